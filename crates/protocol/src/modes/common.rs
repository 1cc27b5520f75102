//! What the states of every mode share: the party's context (its records, randomness and what
//! it has linked and learned so far), the mutual PSI steps, and the ledger helpers.

use std::collections::HashSet;
use std::sync::Arc;

use blindlink_psi::{
    BlindedSet, EncodeRange, InitiatorAwaitingReply, MatchKeyName, MutualInitiator, MutualOutcome,
    MutualReply, MutualResponder, PointsDecoder, PsiError, ReblindedSet,
    ResponderAwaitingReblinded, ResponderReady, WireLimits,
};
use rand_chacha::ChaCha20Rng;

use super::chunks::split;
use super::shell::{ChunkDecoder, Expect, MessageSource};
use super::validate::ValidationOutcome;
use super::{Learned, LinkOutcome, LinkRows, PartyData};
use crate::{
    Disclosure, DisclosureLedger, MAX_MODE_CHUNK_BYTES, Message, MessageKind, Mode, ModeChunk,
    ProtocolError, Role,
};

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

/// After one mutual PSI step whose message is sent a chunk at a time.
pub(crate) enum StreamedStep {
    /// This side's part continues in the next state.
    Continue(Mutual, Option<Box<dyn MessageSource>>),
    /// This side's part is over (the message is its last of the session).
    Finished(MutualOutcome, Option<Box<dyn MessageSource>>),
}

/// The mutual PSI message a state waits for, decoded into its points as the chunks arrive
/// (the bytes are never held whole; the checks and errors are those of the whole-message
/// decoders).
pub(crate) struct PsiIncoming(PointsDecoder);

impl ChunkDecoder for PsiIncoming {
    fn push(&mut self, payload: &[u8]) -> Result<(), ProtocolError> {
        self.0.push(payload).map_err(peer_psi)
    }
}

/// A mutual PSI message made into chunks one at a time from its points (32 bytes a point),
/// the same chunks [`split`] cuts from the encoded message; the points are freed with the
/// last chunk.
struct PointsSource<M> {
    kind: MessageKind,
    round: u16,
    message: Option<M>,
    len: usize,
    offset: usize,
    /// Bytes a chunk ([`MAX_MODE_CHUNK_BYTES`]; less in tests).
    chunk: usize,
}

impl<M: EncodeRange + Send + 'static> PointsSource<M> {
    fn boxed(kind: MessageKind, round: u16, message: M) -> Option<Box<dyn MessageSource>> {
        Some(Box::new(Self::new(
            kind,
            round,
            message,
            MAX_MODE_CHUNK_BYTES,
        )))
    }

    fn new(kind: MessageKind, round: u16, message: M, chunk: usize) -> Self {
        let len = message.encoded_len();
        Self {
            kind,
            round,
            message: Some(message),
            len,
            offset: 0,
            chunk,
        }
    }
}

impl<M: EncodeRange + Send> MessageSource for PointsSource<M> {
    fn next_chunk(&mut self) -> Option<Message> {
        let message = self.message.as_ref()?;
        let end = self.len.min(self.offset.saturating_add(self.chunk));
        let mut payload = Vec::with_capacity(end - self.offset);
        message.encode_range(self.offset, end, &mut payload);
        self.offset = end;
        let last = end == self.len;
        if last {
            self.message = None;
        }
        Some(Message::Mode(ModeChunk {
            kind: self.kind,
            round: self.round,
            last,
            payload,
        }))
    }
}

impl Mutual {
    /// [`Mutual::start`] with the blinded set sent a chunk at a time.
    pub(crate) fn start_streamed<E: AsRef<[u8]> + Sync>(
        cx: &mut Context,
        key: &MatchKeyName,
        elements: &[E],
        round: u16,
    ) -> Result<(Self, Option<Box<dyn MessageSource>>), ProtocolError> {
        if cx.role == Role::Initiator {
            let (state, request) =
                MutualInitiator::start(key, elements, &mut cx.rng).map_err(local_psi)?;
            let send = PointsSource::boxed(MessageKind::PsiBlindedSet, round, request);
            Ok((Self::InitiatorAwaitingReply(state), send))
        } else {
            let state = MutualResponder::start(key, elements, &mut cx.rng).map_err(local_psi)?;
            Ok((Self::ResponderReady(state), None))
        }
    }

    /// The decoder of the message this side waits for.
    pub(crate) fn incoming(&self) -> PsiIncoming {
        let limits = WireLimits::default();
        PsiIncoming(match self {
            Self::InitiatorAwaitingReply(_) => PointsDecoder::mutual_reply(limits),
            Self::ResponderReady(_) => PointsDecoder::blinded_set(limits),
            Self::ResponderAwaitingReblinded(_) => PointsDecoder::reblinded_set(limits),
        })
    }

    /// [`Mutual::step`] on a message decoded as it arrived, with the answer sent a chunk at a
    /// time: each received list is blinded again where it is and sent from there, so a step
    /// holds each list once.
    pub(crate) fn step_streamed(
        self,
        incoming: PsiIncoming,
        round: u16,
    ) -> Result<StreamedStep, ProtocolError> {
        let decoder = incoming.0;
        Ok(match self {
            Self::InitiatorAwaitingReply(state) => {
                let reply = decoder.finish_mutual_reply().map_err(peer_psi)?;
                let (outcome, reblinded) = state.handle_reply_owned(reply).map_err(peer_psi)?;
                let send = PointsSource::boxed(MessageKind::PsiReblindedSet, round, reblinded);
                StreamedStep::Finished(outcome, send)
            }
            Self::ResponderReady(state) => {
                let request = decoder.finish_blinded_set().map_err(peer_psi)?;
                let (next, reply) = state.handle_blinded_set_owned(request).map_err(peer_psi)?;
                let send = PointsSource::boxed(MessageKind::PsiMutualReply, round, reply);
                StreamedStep::Continue(Self::ResponderAwaitingReblinded(next), send)
            }
            Self::ResponderAwaitingReblinded(state) => {
                let message = decoder.finish_reblinded_set().map_err(peer_psi)?;
                let outcome = state.handle_reblinded_set(&message).map_err(peer_psi)?;
                StreamedStep::Finished(outcome, None)
            }
        })
    }
}

/// Distinct values.
pub(crate) fn distinct_count<'a>(values: impl Iterator<Item = &'a [u8]>) -> usize {
    values.collect::<HashSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use blindlink_psi::{MatchKeyName, MutualInitiator, MutualResponder};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::super::chunks::split_at_most;
    use super::*;

    /// The chunks a `PointsSource` makes, one at a time, are those `split` cuts from the
    /// encoded message, for chunk sizes around the point size and the header.
    fn check(kind: MessageKind, message: impl EncodeRange + Send + Clone + 'static, bytes: &[u8]) {
        for chunk in [1, 5, 6, 10, 31, 32, 33, 64, 70, 1 << 20] {
            let mut source = PointsSource::new(kind, 3, message.clone(), chunk);
            let made: Vec<Message> = std::iter::from_fn(|| source.next_chunk()).collect();
            assert_eq!(
                made,
                split_at_most(kind, 3, bytes.to_vec(), chunk),
                "chunks of {chunk}"
            );
            assert!(source.message.is_none(), "the points are freed");
        }
    }

    #[test]
    fn chunks_made_on_demand_are_the_split_message() {
        let key = MatchKeyName::new("k").unwrap();
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let (initiator, request) =
            MutualInitiator::start(&key, &["a", "b", "c"], &mut rng).unwrap();
        check(
            MessageKind::PsiBlindedSet,
            request.clone(),
            &request.encode(),
        );
        let responder = MutualResponder::start(&key, &["c", "d"], &mut rng).unwrap();
        let (_, reply) = responder.handle_blinded_set(&request).unwrap();
        check(MessageKind::PsiMutualReply, reply.clone(), &reply.encode());
        let (_, reblinded) = initiator.handle_reply(&reply).unwrap();
        check(
            MessageKind::PsiReblindedSet,
            reblinded.clone(),
            &reblinded.encode(),
        );
        let (_, empty) = MutualInitiator::start::<&str, _>(&key, &[], &mut rng).unwrap();
        check(MessageKind::PsiBlindedSet, empty.clone(), &empty.encode());
    }
}
