//! The per-role state machine behind [`super::ModeDriver`].
//!
//! One [`Phase`] per point where the machine waits for a logical message; each phase names the
//! kind and round it accepts, and consuming PSI states are moved out of the phase when their
//! message is complete, so a message can only ever be used by the state that expects it.

use std::collections::{HashMap, HashSet};

use blindlink_matching::{
    Candidate, CandidateSearch, ClkStore, DiceThreshold, dice, dice_upper_bound, greedy,
};
use blindlink_psi::{
    BlindedSet, CardinalityInitiator, CardinalityInitiatorAwaitingReply, CardinalityReply,
    CardinalityResponder, CascadePlan, CascadeStep, FalsePositiveRate, InitiatorAwaitingReply,
    MatchKeyName, MutualInitiator, MutualOutcome, MutualReply, MutualResponder, PendingRound,
    PsiError, ReblindedSet, ResponderAwaitingReblinded, ResponderReady, ResponderSet, SetEncoding,
    WireLimits,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, Rng, SeedableRng};
use rayon::prelude::*;

use super::chunks::{Reassembly, split};
use super::minhash::MinHashBlocker;
use super::payload::{self, SentLink};
use super::score::ValidateScorer;
use super::{Learned, LinkOutcome, LinkRow, LinkStatus, MAX_RECORDS, ModeConfig, PartyData};
use crate::{
    Disclosure, DisclosureLedger, DriverStep, Message, MessageKind, Mode, ProtocolError, Role,
};

/// Largest non-PSI logical message (CLK batches) a party accepts.
const MAX_BULK_BYTES: usize = 1 << 30;
/// The match-key name of fuzzy mode's band tokens (a domain tag for hashing them to the group).
const BAND_KEY: &str = "lsh-band";
/// A band token that more of the comparing side's records share than this carries almost no
/// information (it is made of bits that most CLKs set) and would make the comparison quadratic,
/// so the comparing side does not compare through it; pairs that are really alike share
/// another, rarer band token.
const MAX_TOKEN_GROUP: usize = 256;
/// Ledger key of the Dice comparison's links.
const DICE_KEY: &str = "dice";

fn psi_error(error: PsiError) -> ProtocolError {
    ProtocolError::Invalid {
        what: "psi message",
        reason: error.to_string(),
    }
}

/// A mutual PSI session in progress.
enum Mutual {
    InitiatorAwaitingReply(InitiatorAwaitingReply),
    ResponderReady(ResponderReady),
    ResponderAwaitingReblinded(ResponderAwaitingReblinded),
}

/// Fuzzy mode's own band tokens: `record_of_element[e]` is the record whose token element `e` is.
struct Blocking {
    record_of_element: Vec<usize>,
    distinct_tokens: usize,
}

/// After one mutual PSI step: this party's outcome when its part is over, the messages to
/// send, and the next state when it is not.
type MutualStep = (Option<MutualOutcome>, Vec<Message>, Option<Mutual>);

/// What a record of this party ended up with.
#[derive(Debug, Clone, Copy)]
struct RecordLink {
    link_id: [u8; 32],
    key: Option<usize>,
    score: Option<f64>,
    suspected: bool,
}

enum Phase {
    CardinalityAwaitReply(CardinalityInitiatorAwaitingReply),
    CardinalityAwaitBlinded(CardinalityResponder),
    CardinalityAwaitSize,
    Cascade(PendingRound, Mutual),
    Blocking(Blocking, Mutual),
    /// Validate, comparing side: linked records in link-id order.
    AwaitFieldClks(Vec<usize>),
    /// Validate, revealing side: linked records in link-id order.
    AwaitScores(Vec<usize>),
    /// Fuzzy, comparing side: own records' matched token indices.
    AwaitCandidateClks(Vec<Vec<u32>>, usize),
    AwaitAllClks,
    /// Revealing side: the record of each revealed position.
    AwaitLinkIds(Vec<usize>),
    AwaitDone,
    Finished,
    /// After an error: every further message is refused.
    Failed,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Self::CardinalityAwaitReply(_) => "while waiting for the cardinality reply",
            Self::CardinalityAwaitBlinded(_) => "while waiting for the blinded set",
            Self::CardinalityAwaitSize => "while waiting for the intersection size",
            Self::Cascade(..) | Self::Blocking(..) => "during the private set intersection",
            Self::AwaitFieldClks(_) => "while waiting for the per-field filters",
            Self::AwaitScores(_) => "while waiting for the pair scores",
            Self::AwaitCandidateClks(..) => "while waiting for the candidate clks",
            Self::AwaitAllClks => "while waiting for the clks",
            Self::AwaitLinkIds(_) => "while waiting for the link ids",
            Self::AwaitDone => "while waiting for the end of the session",
            Self::Finished => "after the session finished",
            Self::Failed => "after the session failed",
        }
    }

    /// The mode message this phase waits for, and its round.
    fn expects(&self) -> Option<MessageKind> {
        Some(match self {
            Self::CardinalityAwaitReply(_) => MessageKind::PsiCardinalityReply,
            Self::CardinalityAwaitBlinded(_) => MessageKind::PsiBlindedSet,
            Self::CardinalityAwaitSize => MessageKind::IntersectionSize,
            Self::Cascade(_, mutual) | Self::Blocking(_, mutual) => match mutual {
                Mutual::InitiatorAwaitingReply(_) => MessageKind::PsiMutualReply,
                Mutual::ResponderReady(_) => MessageKind::PsiBlindedSet,
                Mutual::ResponderAwaitingReblinded(_) => MessageKind::PsiReblindedSet,
            },
            Self::AwaitFieldClks(_) => MessageKind::FieldClks,
            Self::AwaitScores(_) => MessageKind::PairScores,
            Self::AwaitCandidateClks(..) => MessageKind::CandidateClks,
            Self::AwaitAllClks => MessageKind::AllClks,
            Self::AwaitLinkIds(_) => MessageKind::LinkIds,
            Self::AwaitDone | Self::Finished | Self::Failed => return None,
        })
    }

    fn round(&self) -> u16 {
        match self {
            Self::Cascade(pending, _) => pending.round() as u16,
            _ => 0,
        }
    }
}

pub(crate) struct Machine {
    role: Role,
    config: ModeConfig,
    data: PartyData,
    keys: Vec<MatchKeyName>,
    rng: ChaCha20Rng,
    phase: Phase,
    assembly: Option<Reassembly>,
    links: Vec<Option<RecordLink>>,
    ambiguous: Vec<bool>,
    learned: Learned,
    outcome: Option<LinkOutcome>,
}

impl Machine {
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        role: Role,
        config: ModeConfig,
        data: PartyData,
        rng: &mut R,
    ) -> Result<Self, ProtocolError> {
        check_data(&config, &data)?;
        let keys = config
            .keys
            .iter()
            .map(|k| MatchKeyName::new(k).map_err(psi_error))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let records = data.records.len();
        Ok(Self {
            role,
            config,
            data,
            keys,
            rng: ChaCha20Rng::from_seed(seed),
            phase: Phase::AwaitDone,
            assembly: None,
            links: vec![None; records],
            ambiguous: vec![false; records],
            learned: Learned::default(),
            outcome: None,
        })
    }

    pub(crate) fn mode(&self) -> Mode {
        self.config.mode
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn outcome(&self) -> Option<LinkOutcome> {
        self.outcome.clone()
    }

    fn comparing(&self) -> bool {
        self.role == self.config.comparing
    }

    pub(crate) fn start(
        &mut self,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        let result = self.start_inner(ledger);
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }

    pub(crate) fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        let result = self.handle_inner(message, ledger);
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }

    fn start_inner(&mut self, ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        let _ = ledger;
        let mut send = Vec::new();
        match self.config.mode {
            Mode::Cardinality => {
                let elements: Vec<&[u8]> = self
                    .data
                    .records
                    .iter()
                    .filter_map(|r| r.keys[0].as_deref())
                    .collect();
                if self.role == Role::Initiator {
                    let (state, request) =
                        CardinalityInitiator::start(&self.keys[0], &elements, &mut self.rng)
                            .map_err(psi_error)?;
                    send.extend(split(MessageKind::PsiBlindedSet, 0, &request.encode()));
                    self.phase = Phase::CardinalityAwaitReply(state);
                } else {
                    let encoding = match self.config.cardinality_bloom_fpr {
                        None => SetEncoding::Raw,
                        Some(rate) => {
                            SetEncoding::Bloom(FalsePositiveRate::new(rate).map_err(psi_error)?)
                        }
                    };
                    let responder = CardinalityResponder::new(&self.keys[0], &elements, encoding)
                        .map_err(psi_error)?;
                    self.phase = Phase::CardinalityAwaitBlinded(responder);
                }
            }
            Mode::Exact | Mode::Validate => {
                let keys = if self.config.mode == Mode::Validate {
                    self.keys[..1].to_vec()
                } else {
                    self.keys.clone()
                };
                let records = self
                    .data
                    .records
                    .iter()
                    .map(|r| r.keys[..keys.len()].to_vec())
                    .collect();
                let mut plan = CascadePlan::new(keys, records).map_err(psi_error)?;
                if self.config.mode == Mode::Validate && self.comparing() {
                    // The comparing side scores every holder of a shared ID against the peer's
                    // record itself, so a wrong-person number that two of its records carry is
                    // flagged on the wrong one instead of holding back both.
                    plan = plan.share_duplicates_in_round(0);
                }
                send.extend(self.next_round(plan, ledger)?);
            }
            Mode::Fuzzy => {
                let (blocking, elements) = self.band_tokens()?;
                let key = MatchKeyName::new(BAND_KEY).map_err(psi_error)?;
                let mutual = self.start_mutual(&key, &elements, 0, &mut send)?;
                self.phase = Phase::Blocking(blocking, mutual);
            }
            Mode::ClkExchange => {
                if self.comparing() {
                    self.phase = Phase::AwaitAllClks;
                } else {
                    let revealed: Vec<usize> = (0..self.data.records.len())
                        .filter(|&i| self.data.records[i].clk.is_some())
                        .collect();
                    let clks: Vec<&[u8]> = revealed
                        .iter()
                        .filter_map(|&i| self.data.records[i].clk.as_deref())
                        .collect();
                    let bytes = payload::encode_all_clks(self.config.filter_bits / 8, &clks);
                    send.extend(split(MessageKind::AllClks, 0, &bytes));
                    ledger.record_revealed(Disclosure::Clks {
                        count: revealed.len() as u64,
                    });
                    self.phase = Phase::AwaitLinkIds(revealed);
                }
            }
        }
        Ok(DriverStep {
            send,
            finished: matches!(self.phase, Phase::Finished),
        })
    }

    fn start_mutual(
        &mut self,
        key: &MatchKeyName,
        elements: &[Vec<u8>],
        round: u16,
        send: &mut Vec<Message>,
    ) -> Result<Mutual, ProtocolError> {
        if self.role == Role::Initiator {
            let (state, request) =
                MutualInitiator::start(key, elements, &mut self.rng).map_err(psi_error)?;
            send.extend(split(MessageKind::PsiBlindedSet, round, &request.encode()));
            Ok(Mutual::InitiatorAwaitingReply(state))
        } else {
            let state = MutualResponder::start(key, elements, &mut self.rng).map_err(psi_error)?;
            Ok(Mutual::ResponderReady(state))
        }
    }

    /// Starts the plan's next round, or ends the cascade.
    fn next_round(
        &mut self,
        plan: CascadePlan,
        ledger: &mut DisclosureLedger,
    ) -> Result<Vec<Message>, ProtocolError> {
        let mut send = Vec::new();
        match plan.next_round() {
            CascadeStep::Round(pending) => {
                let key = pending.key().clone();
                let round = pending.round() as u16;
                let elements = pending.elements().to_vec();
                let mutual = self.start_mutual(&key, &elements, round, &mut send)?;
                self.phase = Phase::Cascade(pending, mutual);
            }
            CascadeStep::Done(outcome) => {
                for ambiguous in &outcome.ambiguous {
                    for &record in &ambiguous.records {
                        self.ambiguous[record] = true;
                    }
                }
                for link in &outcome.links {
                    self.links[link.record] = Some(RecordLink {
                        link_id: link.link_id.0,
                        key: Some(link.round),
                        score: None,
                        suspected: false,
                    });
                }
                send.extend(self.after_psi(ledger)?);
            }
        }
        Ok(send)
    }

    /// What follows the last PSI round of exact and validate.
    fn after_psi(&mut self, ledger: &mut DisclosureLedger) -> Result<Vec<Message>, ProtocolError> {
        if self.config.mode == Mode::Exact {
            return Ok(if self.role == Role::Responder {
                self.finish();
                vec![Message::Done]
            } else {
                self.phase = Phase::AwaitDone;
                Vec::new()
            });
        }
        // Validate: both sides order their linked records by link id, which they share.
        let mut linked: Vec<usize> = (0..self.links.len())
            .filter(|&i| self.links[i].is_some())
            .collect();
        linked.sort_by_key(|&i| self.links[i].map(|l| l.link_id));
        if self.comparing() {
            self.phase = Phase::AwaitFieldClks(linked);
            return Ok(Vec::new());
        }
        let bytes = if self.config.validate.fields.is_empty() {
            let empty = vec![0u8; self.config.filter_bits / 8];
            let filters: Vec<Vec<&[u8]>> = linked
                .iter()
                .map(|&i| vec![self.data.records[i].clk.as_deref().unwrap_or(&empty)])
                .collect();
            payload::encode_field_clks(1, self.config.filter_bits / 8, &filters)
        } else {
            let field_bytes = self.config.validate.field_bits / 8;
            let empty = vec![0u8; field_bytes];
            let filters: Vec<Vec<&[u8]>> = linked
                .iter()
                .map(|&i| {
                    self.data.records[i]
                        .fields
                        .iter()
                        .map(|f| f.as_deref().unwrap_or(&empty))
                        .collect()
                })
                .collect();
            payload::encode_field_clks(self.config.validate.fields.len(), field_bytes, &filters)
        };
        ledger.record_revealed(Disclosure::Clks {
            count: linked.len() as u64,
        });
        self.phase = Phase::AwaitScores(linked);
        Ok(split(MessageKind::FieldClks, 0, &bytes))
    }

    /// Fuzzy: every record's band tokens, in record then band order.
    fn band_tokens(&self) -> Result<(Blocking, Vec<Vec<u8>>), ProtocolError> {
        let Some(key) = &self.config.blocking_key else {
            return Err(ProtocolError::Invalid {
                what: "fuzzy configuration",
                reason: "no blocking key (derive one from the linkage secret)".into(),
            });
        };
        let blocker = MinHashBlocker::new(
            key,
            self.config.fuzzy.lsh.bands,
            self.config.fuzzy.lsh.bits_per_band,
            self.config.filter_bits,
        )?;
        let per_record: Vec<(usize, Vec<Vec<u8>>)> = (0..self.data.records.len())
            .into_par_iter()
            .filter_map(|i| {
                let clk = self.data.records[i].clk.as_deref()?;
                Some((i, blocker.tokens(clk)))
            })
            .collect();
        let _ = blocker.bands();
        let mut elements = Vec::new();
        let mut record_of_element = Vec::new();
        for (record, tokens) in per_record {
            for token in tokens {
                elements.push(token);
                record_of_element.push(record);
            }
        }
        let distinct_tokens = elements.iter().collect::<HashSet<_>>().len();
        Ok((
            Blocking {
                record_of_element,
                distinct_tokens,
            },
            elements,
        ))
    }

    fn handle_inner(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        let state = self.phase.name();
        let chunk = match message {
            Message::Mode(chunk) => chunk,
            Message::Done if matches!(self.phase, Phase::AwaitDone) => {
                self.finish();
                return Ok(DriverStep {
                    send: Vec::new(),
                    finished: true,
                });
            }
            other => {
                return Err(ProtocolError::UnexpectedMessage {
                    got: other.kind().name(),
                    state,
                    expected: self.phase.expects().map_or("done", MessageKind::name),
                });
            }
        };
        let round = self.phase.round();
        let Some(kind) = self.phase.expects() else {
            return Err(ProtocolError::UnexpectedMessage {
                got: chunk.kind.name(),
                state,
                expected: if matches!(self.phase, Phase::AwaitDone) {
                    "done"
                } else {
                    "nothing"
                },
            });
        };
        let limit = self.message_limit(kind);
        let assembly = self
            .assembly
            .get_or_insert_with(|| Reassembly::new(kind, round, limit));
        let Some(bytes) = assembly.push(chunk, state)? else {
            return Ok(DriverStep::default());
        };
        self.assembly = None;
        let phase = std::mem::replace(&mut self.phase, Phase::Failed);
        self.dispatch(phase, &bytes, ledger)
    }

    /// The most bytes the logical message this phase waits for can take: exact where the
    /// count is known from the state, a bound otherwise.
    fn message_limit(&self, kind: MessageKind) -> usize {
        let fields = self.config.validate.fields.len().max(1);
        let field_bytes = if self.config.validate.fields.is_empty() {
            self.config.filter_bits / 8
        } else {
            self.config.validate.field_bits / 8
        };
        match &self.phase {
            Phase::CardinalityAwaitSize => 8,
            Phase::AwaitFieldClks(linked) => 10 + linked.len() * fields * field_bytes,
            Phase::AwaitScores(linked) => 4 + linked.len() * 5,
            Phase::AwaitLinkIds(revealed) => 4 + revealed.len() * 40,
            _ if kind.name().starts_with("psi_") => WireLimits::default().max_message_bytes(),
            _ => MAX_BULK_BYTES,
        }
    }

    fn dispatch(
        &mut self,
        phase: Phase,
        bytes: &[u8],
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        self.dispatch_inner(phase, bytes, ledger)
    }

    fn dispatch_inner(
        &mut self,
        phase: Phase,
        bytes: &[u8],
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        let limits = WireLimits::default();
        let mut send = Vec::new();
        let mut finished = false;
        match phase {
            Phase::CardinalityAwaitReply(state) => {
                let reply = CardinalityReply::decode(bytes, &limits).map_err(psi_error)?;
                let outcome = state.handle_reply(&reply).map_err(psi_error)?;
                let key = self.keys[0].as_str().to_owned();
                let own = distinct_count(
                    self.data
                        .records
                        .iter()
                        .filter_map(|r| r.keys[0].as_deref()),
                );
                if let Some(size) = outcome.peer_set_size {
                    self.learn_set_size(ledger, &key, size as u64);
                }
                ledger.record_revealed(Disclosure::SetSize {
                    key: key.clone(),
                    size: own as u64,
                });
                self.learn_both(
                    ledger,
                    Disclosure::IntersectionSize {
                        key: key.clone(),
                        size: outcome.intersection_size as u64,
                    },
                );
                self.learned
                    .intersection_sizes
                    .push((key, outcome.intersection_size as u64));
                if matches!(reply.responder_set(), ResponderSet::Bloom(_)) {
                    self.learned.expected_false_positives = Some(outcome.expected_false_positives);
                }
                send.extend(split(
                    MessageKind::IntersectionSize,
                    0,
                    &payload::encode_intersection_size(outcome.intersection_size as u64),
                ));
                send.push(Message::Done);
                self.finish();
                finished = true;
            }
            Phase::CardinalityAwaitBlinded(responder) => {
                let request = BlindedSet::decode(bytes, &limits).map_err(psi_error)?;
                let key = self.keys[0].as_str().to_owned();
                let peer = request.len() as u64;
                let reply = responder
                    .handle_blinded_set(&request, &mut self.rng)
                    .map_err(psi_error)?;
                self.learn_set_size(ledger, &key, peer);
                if self.config.cardinality_bloom_fpr.is_none() {
                    let own = distinct_count(
                        self.data
                            .records
                            .iter()
                            .filter_map(|r| r.keys[0].as_deref()),
                    );
                    ledger.record_revealed(Disclosure::SetSize {
                        key,
                        size: own as u64,
                    });
                }
                send.extend(split(MessageKind::PsiCardinalityReply, 0, &reply.encode()));
                self.phase = Phase::CardinalityAwaitSize;
            }
            Phase::CardinalityAwaitSize => {
                let size = payload::decode_intersection_size(bytes)?;
                let key = self.keys[0].as_str().to_owned();
                self.learn_both(
                    ledger,
                    Disclosure::IntersectionSize {
                        key: key.clone(),
                        size,
                    },
                );
                self.learned.intersection_sizes.push((key, size));
                self.phase = Phase::AwaitDone;
            }
            Phase::Cascade(pending, mutual) => {
                let key = pending.key().as_str().to_owned();
                let own = pending.elements().len();
                let round = pending.round() as u16;
                let (outcome, mut out, next) = self.step_mutual(mutual, bytes, round)?;
                send.append(&mut out);
                match (outcome, next) {
                    (Some(outcome), _) => {
                        self.record_mutual(ledger, &key, own, &outcome);
                        let plan = pending.finish(&outcome).map_err(psi_error)?;
                        send.extend(self.next_round(plan, ledger)?);
                    }
                    (None, Some(next)) => self.phase = Phase::Cascade(pending, next),
                    (None, None) => unreachable!("a mutual step either finishes or continues"),
                }
            }
            Phase::Blocking(blocking, mutual) => {
                let (outcome, mut out, next) = self.step_mutual(mutual, bytes, 0)?;
                send.append(&mut out);
                match (outcome, next) {
                    (Some(outcome), _) => {
                        send.extend(self.after_blocking(ledger, &blocking, &outcome)?);
                    }
                    (None, Some(next)) => self.phase = Phase::Blocking(blocking, next),
                    (None, None) => unreachable!("a mutual step either finishes or continues"),
                }
            }
            Phase::AwaitFieldClks(linked) => {
                let (fields, field_bytes) = if self.config.validate.fields.is_empty() {
                    (1, self.config.filter_bits / 8)
                } else {
                    (
                        self.config.validate.fields.len(),
                        self.config.validate.field_bits / 8,
                    )
                };
                // `linked` is in link-id order; records sharing a link id (holders of one ID,
                // see `share_duplicates_in_round`) are all compared with the peer's one record.
                let mut peer_record_of = Vec::with_capacity(linked.len());
                let mut peer_records = 0usize;
                for (n, &record) in linked.iter().enumerate() {
                    let same = n > 0
                        && self.links[linked[n - 1]].map(|l| l.link_id)
                            == self.links[record].map(|l| l.link_id);
                    if !same {
                        peer_records += 1;
                    }
                    peer_record_of.push(peer_records - 1);
                }
                let flat = payload::decode_field_clks(bytes, peer_records, fields, field_bytes)?;
                self.learn_clks(ledger, peer_records as u64);
                let scores = self.score_pairs(&linked, &peer_record_of, &flat, fields, field_bytes);
                // The peer gets one score per pair it knows of: the best holder's.
                let mut best: Vec<Option<(u32, bool)>> = vec![None; peer_records];
                for ((&record, &peer), &(score, flagged)) in
                    linked.iter().zip(&peer_record_of).zip(&scores)
                {
                    if let Some(link) = &mut self.links[record] {
                        link.score = Some(payload::dequantise(score));
                        link.suspected = flagged;
                    }
                    if best[peer].is_none_or(|(b, _)| score > b) {
                        best[peer] = Some((score, flagged));
                    }
                }
                let best: Vec<(u32, bool)> = best.into_iter().flatten().collect();
                self.learn_both(
                    ledger,
                    Disclosure::AgreementScores {
                        pairs: peer_records as u64,
                    },
                );
                self.learned.pair_scores = peer_records as u64;
                send.extend(split(
                    MessageKind::PairScores,
                    0,
                    &payload::encode_pair_scores(&best),
                ));
                self.phase = Phase::AwaitDone;
            }
            Phase::AwaitScores(linked) => {
                let scores = payload::decode_pair_scores(bytes, linked.len())?;
                for (&record, &(score, flagged)) in linked.iter().zip(&scores) {
                    if let Some(link) = &mut self.links[record] {
                        link.score = Some(payload::dequantise(score));
                        link.suspected = flagged;
                    }
                }
                self.learn_both(
                    ledger,
                    Disclosure::AgreementScores {
                        pairs: linked.len() as u64,
                    },
                );
                self.learned.pair_scores = linked.len() as u64;
                send.push(Message::Done);
                self.finish();
                finished = true;
            }
            Phase::AwaitCandidateClks(own_tokens, token_count) => {
                let clk_bytes = self.config.filter_bits / 8;
                let candidates =
                    payload::decode_candidate_clks(bytes, clk_bytes, MAX_RECORDS, token_count)?;
                let count = candidates.tokens.len();
                self.learn_clks(ledger, count as u64);
                let theirs = self.store_of(&candidates.clks)?;
                let ours_index: Vec<usize> = (0..self.data.records.len())
                    .filter(|&i| self.data.records[i].clk.is_some())
                    .collect();
                let ours = self.own_store(&ours_index)?;
                // Own records (positions in `ours`) by matched token.
                let mut by_token: Vec<Vec<u32>> = vec![Vec::new(); token_count];
                let mut position_of = vec![u32::MAX; self.data.records.len()];
                for (p, &i) in ours_index.iter().enumerate() {
                    position_of[i] = p as u32;
                }
                for (record, tokens) in own_tokens.iter().enumerate() {
                    for &t in tokens {
                        by_token[t as usize].push(position_of[record]);
                    }
                }
                let threshold = self.config.fuzzy.dice_threshold;
                // Each revealed record against the own records sharing a token with it, each
                // pair once (a per-thread stamp instead of sorting), popcount bound first.
                let (ours, theirs) = (&ours, &theirs);
                let by_token = &by_token;
                let pairs: Vec<Candidate> = candidates
                    .tokens
                    .par_iter()
                    .enumerate()
                    .map_init(
                        || vec![u32::MAX; ours.len()],
                        |seen, (j, tokens)| {
                            let mut found = Vec::new();
                            let pb = theirs.popcount(j);
                            for &t in tokens {
                                let group = &by_token[t as usize];
                                if group.len() > MAX_TOKEN_GROUP {
                                    continue;
                                }
                                for &a in group {
                                    let a = a as usize;
                                    if seen[a] == j as u32 {
                                        continue;
                                    }
                                    seen[a] = j as u32;
                                    if dice_upper_bound(ours.popcount(a), pb) < threshold {
                                        continue;
                                    }
                                    let score = dice(ours, a, theirs, j);
                                    if score >= threshold {
                                        found.push(Candidate { a, b: j, score });
                                    }
                                }
                            }
                            found
                        },
                    )
                    .flatten_iter()
                    .collect();
                send.extend(self.link_pairs(ledger, &pairs, &ours_index)?);
            }
            Phase::AwaitAllClks => {
                let clk_bytes = self.config.filter_bits / 8;
                let (flat, count) = payload::decode_all_clks(bytes, clk_bytes, MAX_RECORDS)?;
                self.learn_clks(ledger, count as u64);
                let theirs = self.store_of(&flat)?;
                let ours_index: Vec<usize> = (0..self.data.records.len())
                    .filter(|&i| self.data.records[i].clk.is_some())
                    .collect();
                let ours = self.own_store(&ours_index)?;
                let threshold =
                    DiceThreshold::new(self.config.fuzzy.dice_threshold).map_err(|e| {
                        ProtocolError::Invalid {
                            what: "dice threshold",
                            reason: e.to_string(),
                        }
                    })?;
                let (pairs, _) = CandidateSearch::new(threshold)
                    .collect(&ours, &theirs)
                    .map_err(|e| ProtocolError::Invalid {
                        what: "all clks",
                        reason: e.to_string(),
                    })?;
                send.extend(self.link_pairs(ledger, &pairs, &ours_index)?);
            }
            Phase::AwaitLinkIds(revealed) => {
                let links = payload::decode_link_ids(bytes, revealed.len())?;
                for link in &links {
                    self.links[revealed[link.position as usize]] = Some(RecordLink {
                        link_id: link.link_id,
                        key: None,
                        score: Some(payload::dequantise(link.score)),
                        suspected: false,
                    });
                }
                self.learn_both(
                    ledger,
                    Disclosure::MatchedRecords {
                        key: DICE_KEY.into(),
                        count: links.len() as u64,
                    },
                );
                send.push(Message::Done);
                self.finish();
                finished = true;
            }
            Phase::AwaitDone | Phase::Finished | Phase::Failed => {
                unreachable!("phases without a mode message never reach dispatch")
            }
        }
        let finished = finished || matches!(self.phase, Phase::Finished);
        Ok(DriverStep { send, finished })
    }

    /// One mutual PSI step: the outcome when this party's part is over, the messages to send,
    /// and the next state when it is not.
    fn step_mutual(
        &mut self,
        mutual: Mutual,
        bytes: &[u8],
        round: u16,
    ) -> Result<MutualStep, ProtocolError> {
        let limits = WireLimits::default();
        Ok(match mutual {
            Mutual::InitiatorAwaitingReply(state) => {
                let reply = MutualReply::decode(bytes, &limits).map_err(psi_error)?;
                let (outcome, reblinded) = state.handle_reply(&reply).map_err(psi_error)?;
                let send = split(MessageKind::PsiReblindedSet, round, &reblinded.encode());
                (Some(outcome), send, None)
            }
            Mutual::ResponderReady(state) => {
                let request = BlindedSet::decode(bytes, &limits).map_err(psi_error)?;
                let (next, reply) = state.handle_blinded_set(&request).map_err(psi_error)?;
                let send = split(MessageKind::PsiMutualReply, round, &reply.encode());
                (None, send, Some(Mutual::ResponderAwaitingReblinded(next)))
            }
            Mutual::ResponderAwaitingReblinded(state) => {
                let message = ReblindedSet::decode(bytes, &limits).map_err(psi_error)?;
                let outcome = state.handle_reblinded_set(&message).map_err(psi_error)?;
                (Some(outcome), Vec::new(), None)
            }
        })
    }

    /// Ledger entries of one mutual PSI session; both sides record the same entries.
    fn record_mutual(
        &mut self,
        ledger: &mut DisclosureLedger,
        key: &str,
        own_distinct: usize,
        outcome: &MutualOutcome,
    ) {
        let intersection = outcome
            .matches
            .iter()
            .map(|m| m.link_id)
            .collect::<HashSet<_>>()
            .len() as u64;
        self.learn_set_size(ledger, key, outcome.peer_set_size as u64);
        ledger.record_revealed(Disclosure::SetSize {
            key: key.to_owned(),
            size: own_distinct as u64,
        });
        self.learn_both(
            ledger,
            Disclosure::IntersectionSize {
                key: key.to_owned(),
                size: intersection,
            },
        );
        self.learned
            .intersection_sizes
            .push((key.to_owned(), intersection));
    }

    fn learn_set_size(&mut self, ledger: &mut DisclosureLedger, key: &str, size: u64) {
        ledger.record_learned(Disclosure::SetSize {
            key: key.to_owned(),
            size,
        });
        self.learned.peer_set_sizes.push((key.to_owned(), size));
    }

    /// A disclosure both parties learn.
    fn learn_both(&mut self, ledger: &mut DisclosureLedger, disclosure: Disclosure) {
        ledger.record_learned(disclosure.clone());
        ledger.record_revealed(disclosure);
    }

    fn learn_clks(&mut self, ledger: &mut DisclosureLedger, count: u64) {
        ledger.record_learned(Disclosure::Clks { count });
        self.learned.clks_received += count;
    }

    /// Fuzzy, after the band-token PSI: which records are candidates, by matched token.
    fn after_blocking(
        &mut self,
        ledger: &mut DisclosureLedger,
        blocking: &Blocking,
        outcome: &MutualOutcome,
    ) -> Result<Vec<Message>, ProtocolError> {
        self.record_mutual(ledger, BAND_KEY, blocking.distinct_tokens, outcome);
        let mut matched: Vec<[u8; 32]> = outcome.matches.iter().map(|m| m.link_id.0).collect();
        matched.sort_unstable();
        matched.dedup();
        let index: HashMap<[u8; 32], u32> = matched
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); self.data.records.len()];
        for m in &outcome.matches {
            tokens[blocking.record_of_element[m.index]].push(index[&m.link_id.0]);
        }
        for list in &mut tokens {
            list.sort_unstable();
            list.dedup();
        }
        if self.comparing() {
            self.phase = Phase::AwaitCandidateClks(tokens, matched.len());
            return Ok(Vec::new());
        }
        let revealed: Vec<usize> = (0..tokens.len())
            .filter(|&i| !tokens[i].is_empty())
            .collect();
        let records: Vec<(&[u8], &[u32])> = revealed
            .iter()
            .filter_map(|&i| {
                self.data.records[i]
                    .clk
                    .as_deref()
                    .map(|clk| (clk, tokens[i].as_slice()))
            })
            .collect();
        let bytes = payload::encode_candidate_clks(self.config.filter_bits / 8, &records);
        ledger.record_revealed(Disclosure::Clks {
            count: revealed.len() as u64,
        });
        self.phase = Phase::AwaitLinkIds(revealed);
        Ok(split(MessageKind::CandidateClks, 0, &bytes))
    }

    /// Comparing side: one-to-one links from candidate pairs (`a`: position in `ours_index`,
    /// `b`: the peer's revealed position), fresh link ids, and the message that returns them.
    fn link_pairs(
        &mut self,
        ledger: &mut DisclosureLedger,
        pairs: &[Candidate],
        ours_index: &[usize],
    ) -> Result<Vec<Message>, ProtocolError> {
        let mut kept = greedy(pairs).map_err(|e| ProtocolError::Invalid {
            what: "candidate pairs",
            reason: e.to_string(),
        })?;
        kept.sort_unstable_by_key(|c| c.b);
        let mut sent = Vec::with_capacity(kept.len());
        for pair in &kept {
            let mut link_id = [0u8; 32];
            self.rng.fill_bytes(&mut link_id);
            let score = payload::quantise(pair.score);
            self.links[ours_index[pair.a]] = Some(RecordLink {
                link_id,
                key: None,
                score: Some(payload::dequantise(score)),
                suspected: false,
            });
            sent.push(SentLink {
                position: pair.b as u32,
                link_id,
                score,
            });
        }
        self.learn_both(
            ledger,
            Disclosure::MatchedRecords {
                key: DICE_KEY.into(),
                count: kept.len() as u64,
            },
        );
        self.phase = Phase::AwaitDone;
        Ok(split(
            MessageKind::LinkIds,
            0,
            &payload::encode_link_ids(&sent),
        ))
    }

    fn store_of(&self, flat: &[u8]) -> Result<ClkStore, ProtocolError> {
        ClkStore::from_bytes(self.config.filter_bits, flat).map_err(|e| ProtocolError::Invalid {
            what: "clks",
            reason: e.to_string(),
        })
    }

    fn own_store(&self, index: &[usize]) -> Result<ClkStore, ProtocolError> {
        ClkStore::from_clks(
            self.config.filter_bits,
            index
                .iter()
                .filter_map(|&i| self.data.records[i].clk.as_deref()),
        )
        .map_err(|e| ProtocolError::Invalid {
            what: "party data",
            reason: e.to_string(),
        })
    }

    /// Validate, comparing side: the quantised score and flag of each linked pair.
    fn score_pairs(
        &self,
        linked: &[usize],
        peer_record_of: &[usize],
        flat: &[u8],
        fields: usize,
        field_bytes: usize,
    ) -> Vec<(u32, bool)> {
        let stride = fields * field_bytes;
        let scorer = ValidateScorer::new(
            self.config.validate.fields.clone(),
            self.config.validate.threshold,
        );
        let empty_field = vec![0u8; field_bytes];
        linked
            .par_iter()
            .zip(peer_record_of)
            .map(|(&record, &pair)| {
                let theirs: Vec<&[u8]> = flat[pair * stride..(pair + 1) * stride]
                    .chunks(field_bytes.max(1))
                    .collect();
                let record = &self.data.records[record];
                if self.config.validate.fields.is_empty() {
                    let ours = record.clk.as_deref().unwrap_or(&empty_field);
                    let score = dice_bytes(ours, theirs[0]);
                    let q = payload::quantise(score);
                    (q, payload::dequantise(q) < self.config.validate.threshold)
                } else {
                    let ours: Vec<&[u8]> = record
                        .fields
                        .iter()
                        .map(|f| f.as_deref().unwrap_or(&empty_field))
                        .collect();
                    let agreement = scorer.score(&ours, &theirs);
                    (payload::quantise(agreement.score), agreement.flagged)
                }
            })
            .collect()
    }

    /// Builds the outcome and ends the machine.
    fn finish(&mut self) {
        self.phase = Phase::Finished;
        let mode = self.config.mode;
        let rows = if mode == Mode::Cardinality {
            Vec::new()
        } else {
            self.data
                .records
                .iter()
                .enumerate()
                .map(|(i, record)| {
                    let link = self.links[i];
                    let status = match link {
                        Some(l) if l.suspected => LinkStatus::SuspectedWrongPerson,
                        Some(_) => LinkStatus::Linked,
                        None if self.ambiguous[i] => LinkStatus::Ambiguous,
                        None => LinkStatus::Unmatched,
                    };
                    LinkRow {
                        local_id: record.id.clone(),
                        link_id: link.map(|l| hex::encode(l.link_id)),
                        mode,
                        score: link.and_then(|l| l.score),
                        status,
                        key: link
                            .and_then(|l| l.key)
                            .map(|k| self.config.keys[k].clone()),
                    }
                })
                .collect()
        };
        self.outcome = Some(LinkOutcome::new(
            mode,
            self.role,
            rows,
            self.learned.clone(),
        ));
    }
}

fn dice_bytes(a: &[u8], b: &[u8]) -> f64 {
    let pa: u32 = a.iter().map(|x| x.count_ones()).sum();
    let pb: u32 = b.iter().map(|x| x.count_ones()).sum();
    let common: u32 = a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum();
    blindlink_matching::dice_from_counts(common, pa, pb)
}

fn distinct_count<'a>(values: impl Iterator<Item = &'a [u8]>) -> usize {
    values.collect::<HashSet<_>>().len()
}

/// Checks that the data fits the configuration, naming the first record that does not.
fn check_data(config: &ModeConfig, data: &PartyData) -> Result<(), ProtocolError> {
    if data.records.len() > MAX_RECORDS {
        return Err(ProtocolError::Invalid {
            what: "party data",
            reason: format!(
                "{} records, over the limit of {MAX_RECORDS}",
                data.records.len()
            ),
        });
    }
    let bad = |i: usize, id: &str, reason: String| ProtocolError::Invalid {
        what: "party data",
        reason: format!("record {} ('{id}'): {reason}", i + 1),
    };
    let clk_bytes = config.filter_bits / 8;
    let field_bytes = config.validate.field_bits / 8;
    for (i, record) in data.records.iter().enumerate() {
        let id = record.id.as_str();
        match config.mode {
            Mode::Cardinality | Mode::Exact | Mode::Validate => {
                if record.keys.len() != config.keys.len() {
                    return Err(bad(
                        i,
                        id,
                        format!(
                            "{} match keys, expected {}",
                            record.keys.len(),
                            config.keys.len()
                        ),
                    ));
                }
            }
            Mode::Fuzzy | Mode::ClkExchange => {}
        }
        let needs_clk = matches!(config.mode, Mode::Fuzzy | Mode::ClkExchange)
            || (config.mode == Mode::Validate && config.validate.fields.is_empty());
        if needs_clk
            && let Some(clk) = &record.clk
            && clk.len() != clk_bytes
        {
            return Err(bad(
                i,
                id,
                format!("clk of {} bytes, expected {clk_bytes}", clk.len()),
            ));
        }
        if config.mode == Mode::Validate && !config.validate.fields.is_empty() {
            if record.fields.len() != config.validate.fields.len() {
                return Err(bad(
                    i,
                    id,
                    format!(
                        "{} field filters, expected {}",
                        record.fields.len(),
                        config.validate.fields.len()
                    ),
                ));
            }
            for (f, filter) in record.fields.iter().enumerate() {
                if let Some(filter) = filter
                    && filter.len() != field_bytes
                {
                    return Err(bad(
                        i,
                        id,
                        format!(
                            "filter of field '{}' has {} bytes, expected {field_bytes}",
                            config.validate.fields[f].name,
                            filter.len()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
