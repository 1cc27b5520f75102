//! What the states of every mode share: the party's context (its records, randomness and what
//! it has linked and learned so far), the mutual PSI steps, and the ledger helpers.

use std::collections::HashSet;
use std::sync::Arc;

use blindlink_psi::{
    BlindedSet, InitiatorAwaitingReply, MatchKeyName, MutualInitiator, MutualOutcome, MutualReply,
    MutualResponder, PsiError, ReblindedSet, ResponderAwaitingReblinded, ResponderReady,
    WireLimits,
};
use rand_chacha::ChaCha20Rng;

use super::chunks::split;
use super::shell::Expect;
use super::validate::ValidationOutcome;
use super::{Learned, LinkOutcome, LinkRows, PartyData};
use crate::{Disclosure, DisclosureLedger, Message, MessageKind, Mode, ProtocolError, Role};

/// A PSI error caused by the peer's bytes.
pub(crate) fn peer_psi(error: PsiError) -> ProtocolError {
    ProtocolError::Invalid {
        what: "psi message",
        reason: error.to_string(),
    }
}

/// A PSI error caused by this side's own data (too many or too large groups, a bad key name).
pub(crate) fn local_psi(error: PsiError) -> ProtocolError {
    ProtocolError::Local {
        what: "psi input",
        reason: error.to_string(),
    }
}

/// What a record of this party ended up with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordLink {
    pub(crate) link_id: [u8; 32],
    /// The cascade round (match key) that linked it (at most `MAX_MATCH_KEYS`: a byte keeps
    /// this 56 bytes a record, not 72).
    pub(crate) key: Option<u8>,
    pub(crate) score: Option<f64>,
    pub(crate) suspected: bool,
}

/// One party's side of a run, shared by the states of its mode.
pub(crate) struct Context {
    pub(crate) role: Role,
    pub(crate) data: Arc<PartyData>,
    pub(crate) rng: ChaCha20Rng,
    /// The session id (from the ledger at start): binds the grouped PSI's hashes.
    pub(crate) session: [u8; 16],
    pub(crate) links: Vec<Option<RecordLink>>,
    pub(crate) ambiguous: Vec<bool>,
    pub(crate) learned: Learned,
    /// `validate`, the comparing side: the Fellegi–Sunter model and each record's pattern.
    pub(crate) validation: Option<ValidationOutcome>,
}

impl Context {
    pub(crate) fn new(role: Role, data: Arc<PartyData>, rng: ChaCha20Rng) -> Self {
        let records = data.len();
        Self {
            role,
            data,
            rng,
            session: [0; 16],
            // Made when the first record is linked (after the PSI, whose step is the
            // session's peak): 56 bytes a record.
            links: Vec::new(),
            ambiguous: vec![false; records],
            learned: Learned::default(),
            validation: None,
        }
    }

    /// The link slot of record `record` (the slots are made on the first call).
    pub(crate) fn link_mut(&mut self, record: usize) -> &mut Option<RecordLink> {
        if self.links.is_empty() {
            self.links = vec![None; self.data.len()];
        }
        &mut self.links[record]
    }

    /// A disclosure both parties learn.
    pub(crate) fn learn_both(ledger: &mut DisclosureLedger, disclosure: Disclosure) {
        ledger.record_learned(disclosure.clone());
        ledger.record_revealed(disclosure);
    }

    pub(crate) fn learn_set_size(&mut self, ledger: &mut DisclosureLedger, key: &str, size: u64) {
        ledger.record_learned(Disclosure::SetSize {
            key: key.to_owned(),
            size,
        });
        self.learned.peer_set_sizes.push((key.to_owned(), size));
    }

    pub(crate) fn learn_intersection(
        &mut self,
        ledger: &mut DisclosureLedger,
        key: &str,
        size: u64,
    ) {
        Self::learn_both(
            ledger,
            Disclosure::IntersectionSize {
                key: key.to_owned(),
                size,
            },
        );
        self.learned.intersection_sizes.push((key.to_owned(), size));
    }

    /// Ledger entries of one mutual PSI session; both sides record the same entries.
    pub(crate) fn record_mutual(
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
        self.learn_intersection(ledger, key, intersection);
    }

    /// The outcome: the rows as this side's decisions (moved out of the context, which the
    /// session no longer needs), made into rows only when read.
    pub(crate) fn outcome(&mut self, mode: Mode, keys: &[String]) -> LinkOutcome {
        let rows = if mode == Mode::Cardinality {
            LinkRows::default()
        } else {
            LinkRows::decided(
                mode,
                Arc::clone(&self.data),
                keys.to_vec(),
                if self.links.is_empty() {
                    vec![None; self.data.len()]
                } else {
                    std::mem::take(&mut self.links)
                },
                std::mem::take(&mut self.ambiguous),
            )
        };
        let mut outcome =
            LinkOutcome::new(mode, self.role, rows, std::mem::take(&mut self.learned));
        outcome.validation = self.validation.take();
        outcome
    }
}

/// A mutual PSI session in progress, one variant per message a side waits for.
pub(crate) enum Mutual {
    InitiatorAwaitingReply(InitiatorAwaitingReply),
    ResponderReady(ResponderReady),
    ResponderAwaitingReblinded(ResponderAwaitingReblinded),
}

/// After one mutual PSI step.
pub(crate) enum MutualStep {
    /// This side's part continues in the next state.
    Continue(Mutual, Vec<Message>),
    /// This side's part is over (the messages are its last of the session).
    Finished(MutualOutcome, Vec<Message>),
}

impl Mutual {
    /// Starts a session on `elements`: the initiator sends its blinded set at once.
    pub(crate) fn start<E: AsRef<[u8]> + Sync>(
        cx: &mut Context,
        key: &MatchKeyName,
        elements: &[E],
        round: u16,
    ) -> Result<(Self, Vec<Message>), ProtocolError> {
        if cx.role == Role::Initiator {
            let (state, request) =
                MutualInitiator::start(key, elements, &mut cx.rng).map_err(local_psi)?;
            let send = split(MessageKind::PsiBlindedSet, round, request.encode());
            Ok((Self::InitiatorAwaitingReply(state), send))
        } else {
            let state = MutualResponder::start(key, elements, &mut cx.rng).map_err(local_psi)?;
            Ok((Self::ResponderReady(state), Vec::new()))
        }
    }

    pub(crate) fn expects(&self, round: u16) -> Expect {
        let kind = match self {
            Self::InitiatorAwaitingReply(_) => MessageKind::PsiMutualReply,
            Self::ResponderReady(_) => MessageKind::PsiBlindedSet,
            Self::ResponderAwaitingReblinded(_) => MessageKind::PsiReblindedSet,
        };
        Expect {
            kind,
            round,
            limit: WireLimits::default().max_message_bytes(),
        }
    }

    /// Takes the next message of this side's part. The message's bytes are dropped once
    /// decoded, and a reply once encoded: a PSI message holds 32 bytes per element of a set,
    /// and the largest sessions hold several of them.
    pub(crate) fn step(self, bytes: Vec<u8>, round: u16) -> Result<MutualStep, ProtocolError> {
        let limits = WireLimits::default();
        Ok(match self {
            Self::InitiatorAwaitingReply(state) => {
                let reply = MutualReply::decode(&bytes, &limits).map_err(peer_psi)?;
                drop(bytes);
                let (outcome, reblinded) = state.handle_reply(&reply).map_err(peer_psi)?;
                drop(reply);
                let send = split(MessageKind::PsiReblindedSet, round, reblinded.encode());
                MutualStep::Finished(outcome, send)
            }
            Self::ResponderReady(state) => {
                let request = BlindedSet::decode(&bytes, &limits).map_err(peer_psi)?;
                drop(bytes);
                let (next, reply) = state.handle_blinded_set(&request).map_err(peer_psi)?;
                drop(request);
                let encoded = reply.encode();
                drop(reply);
                let send = split(MessageKind::PsiMutualReply, round, encoded);
                MutualStep::Continue(Self::ResponderAwaitingReblinded(next), send)
            }
            Self::ResponderAwaitingReblinded(state) => {
                let message = ReblindedSet::decode(&bytes, &limits).map_err(peer_psi)?;
                drop(bytes);
                let outcome = state.handle_reblinded_set(&message).map_err(peer_psi)?;
                MutualStep::Finished(outcome, Vec::new())
            }
        })
    }
}

/// Distinct values.
pub(crate) fn distinct_count<'a>(values: impl Iterator<Item = &'a [u8]>) -> usize {
    values.collect::<HashSet<_>>().len()
}
