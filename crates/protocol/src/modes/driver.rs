//! The per-role state machine behind [`super::ModeDriver`].
//!
//! Interim: validate and fuzzy are being moved onto the grouped PSI and typed states.
#![allow(dead_code)]
//!
//! One [`Phase`] per point where the machine waits for a logical message; each phase names the
//! kind and round it accepts, and consuming PSI states are moved out of the phase when their
//! message is complete, so a message can only ever be used by the state that expects it.

use std::collections::HashSet;

use blindlink_matching::{Candidate, CandidateSearch, ClkStore, DiceThreshold, greedy};
use blindlink_psi::{
    BlindedSet, CardinalityInitiator, CardinalityInitiatorAwaitingReply, CardinalityReply,
    CardinalityResponder, CascadePlan, CascadeStep, FalsePositiveRate, InitiatorAwaitingReply,
    MatchKeyName, MutualInitiator, MutualOutcome, MutualReply, MutualResponder, PendingRound,
    PsiError, ReblindedSet, ResponderAwaitingReblinded, ResponderReady, ResponderSet, SetEncoding,
    WireLimits,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, Rng, SeedableRng};

use super::chunks::{Reassembly, split};
use super::payload::{self, SentLink};
use super::{
    Learned, LinkOutcome, LinkRow, LinkStatus, MAX_FIELD_TOKENS, MAX_RECORDS, MAX_TOKEN_BYTES,
    ModeConfig, PartyData,
};
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
            Self::Cascade(..) => "during the private set intersection",
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
            Self::Cascade(_, mutual) => match mutual {
                Mutual::InitiatorAwaitingReply(_) => MessageKind::PsiMutualReply,
                Mutual::ResponderReady(_) => MessageKind::PsiBlindedSet,
                Mutual::ResponderAwaitingReblinded(_) => MessageKind::PsiReblindedSet,
            },
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
            .keys()
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
        self.config.mode()
    }

    fn bloom_fpr(&self) -> Option<f64> {
        match &self.config {
            ModeConfig::Cardinality(c) => c.bloom_fpr,
            _ => None,
        }
    }

    fn filter_bits(&self) -> usize {
        self.config.filter_bits().unwrap_or(8)
    }

    fn dice_threshold(&self) -> f64 {
        match &self.config {
            ModeConfig::ClkExchange(c) => c.dice_threshold,
            _ => 1.0,
        }
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn outcome(&self) -> Option<LinkOutcome> {
        self.outcome.clone()
    }

    fn comparing(&self) -> bool {
        Some(self.role) == self.config.comparing()
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
        match self.config.mode() {
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
                    let encoding = match self.bloom_fpr() {
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
                let keys = if self.config.mode() == Mode::Validate {
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
                if self.config.mode() == Mode::Validate && self.comparing() {
                    // The comparing side scores every holder of a shared ID against the peer's
                    // record itself, so a wrong-person number that two of its records carry is
                    // flagged on the wrong one instead of holding back both.
                    plan = plan.share_duplicates_in_round(0);
                }
                send.extend(self.next_round(plan, ledger)?);
            }
            Mode::Fuzzy => {
                return Err(ProtocolError::Local {
                    what: "fuzzy",
                    reason: "fuzzy over the grouped PSI is not available in this build yet".into(),
                });
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
                    let bytes = payload::encode_all_clks(self.filter_bits() / 8, &clks);
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
        let _ = ledger;
        if self.config.mode() == Mode::Exact {
            return Ok(if self.role == Role::Responder {
                self.finish();
                vec![Message::Done]
            } else {
                self.phase = Phase::AwaitDone;
                Vec::new()
            });
        }
        Err(ProtocolError::Local {
            what: "validate",
            reason: "validate over the grouped PSI is not available in this build yet".into(),
        })
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
        match &self.phase {
            Phase::CardinalityAwaitSize => 8,
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
                if self.bloom_fpr().is_none() {
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
            Phase::AwaitAllClks => {
                let clk_bytes = self.filter_bits() / 8;
                let (flat, count) = payload::decode_all_clks(bytes, clk_bytes, MAX_RECORDS)?;
                self.learn_clks(ledger, count as u64);
                let theirs = self.store_of(&flat)?;
                let ours_index: Vec<usize> = (0..self.data.records.len())
                    .filter(|&i| self.data.records[i].clk.is_some())
                    .collect();
                let ours = self.own_store(&ours_index)?;
                let threshold = DiceThreshold::new(self.dice_threshold()).map_err(|e| {
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
        ClkStore::from_bytes(self.filter_bits(), flat).map_err(|e| ProtocolError::Invalid {
            what: "clks",
            reason: e.to_string(),
        })
    }

    fn own_store(&self, index: &[usize]) -> Result<ClkStore, ProtocolError> {
        ClkStore::from_clks(
            self.filter_bits(),
            index
                .iter()
                .filter_map(|&i| self.data.records[i].clk.as_deref()),
        )
        .map_err(|e| ProtocolError::Invalid {
            what: "party data",
            reason: e.to_string(),
        })
    }

    /// Builds the outcome and ends the machine.
    fn finish(&mut self) {
        self.phase = Phase::Finished;
        let mode = self.config.mode();
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
                            .map(|k| self.config.keys()[k].clone()),
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

fn distinct_count<'a>(values: impl Iterator<Item = &'a [u8]>) -> usize {
    values.collect::<HashSet<_>>().len()
}

/// Checks that the data fits the configuration, naming the first record that does not.
fn check_data(config: &ModeConfig, data: &PartyData) -> Result<(), ProtocolError> {
    if data.records.len() > MAX_RECORDS {
        return Err(ProtocolError::Local {
            what: "party data",
            reason: format!(
                "{} records, over the limit of {MAX_RECORDS}",
                data.records.len()
            ),
        });
    }
    let bad = |i: usize, id: &str, reason: String| ProtocolError::Local {
        what: "party data",
        reason: format!("record {} ('{id}'): {reason}", i + 1),
    };
    let keys = config.keys().len();
    let fields = config.fields();
    for (i, record) in data.records.iter().enumerate() {
        let id = record.id.as_str();
        if record.keys.len() != keys {
            return Err(bad(
                i,
                id,
                format!("{} match keys, expected {keys}", record.keys.len()),
            ));
        }
        if let Some(bits) = config.filter_bits()
            && let Some(clk) = &record.clk
            && clk.len() != bits / 8
        {
            return Err(bad(
                i,
                id,
                format!("clk of {} bytes, expected {}", clk.len(), bits / 8),
            ));
        }
        if !fields.is_empty() {
            if record.fields.len() != fields.len() {
                return Err(bad(
                    i,
                    id,
                    format!(
                        "{} compared fields, expected {}",
                        record.fields.len(),
                        fields.len()
                    ),
                ));
            }
            for (f, tokens) in record.fields.iter().enumerate() {
                if tokens.len() > MAX_FIELD_TOKENS {
                    return Err(bad(
                        i,
                        id,
                        format!(
                            "field '{}' has {} tokens, over the limit of {MAX_FIELD_TOKENS}",
                            fields[f].name,
                            tokens.len()
                        ),
                    ));
                }
                if let Some(t) = tokens.iter().find(|t| t.len() > MAX_TOKEN_BYTES) {
                    return Err(bad(
                        i,
                        id,
                        format!(
                            "a token of field '{}' has {} bytes, over the limit of {MAX_TOKEN_BYTES}",
                            fields[f].name,
                            t.len()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
