//! `cardinality`: ECDH-PSI cardinality on one match key. The initiator sends its blinded set,
//! the responder answers with its own set (raw points or a Bloom filter), the initiator counts
//! the intersection and sends the count back; both sides learn only the count (and the set
//! sizes the PSI reveals).
//!
//! ```text
//! initiator                                   responder
//! start ──── psi_blinded_set ───────────────▶ AwaitBlindedSet
//! AwaitReply ◀── psi_cardinality_reply ──────
//!   ──── intersection_size, done ───────────▶ AwaitSize → (done)
//! ```

use blindlink_psi::{
    BlindedSet, CardinalityInitiator, CardinalityInitiatorAwaitingReply, CardinalityReply,
    CardinalityResponder, FalsePositiveRate, MatchKeyName, ResponderSet, SetEncoding, WireLimits,
};

use super::CardinalityConfig;
use super::chunks::split;
use super::common::{Context, distinct_count, local_psi, peer_psi};
use super::payload;
use super::shell::{Expect, Next, State, Transition};
use crate::{Disclosure, DisclosureLedger, MessageKind, ProtocolError, Role};

pub(crate) fn start(
    cx: &mut Context,
    _ledger: &mut DisclosureLedger,
    config: &CardinalityConfig,
) -> Result<Transition, ProtocolError> {
    let key = MatchKeyName::new(&config.key).map_err(local_psi)?;
    let elements: Vec<&[u8]> = (0..cx.data.len())
        .filter_map(|i| cx.data.key(i, 0))
        .collect();
    let own = distinct_count(elements.iter().copied());
    if cx.role == Role::Initiator {
        let (state, request) =
            CardinalityInitiator::start(&key, &elements, &mut cx.rng).map_err(local_psi)?;
        let send = split(MessageKind::PsiBlindedSet, 0, request.encode());
        Ok(Transition::to(
            send,
            AwaitReply {
                state,
                key: config.key.clone(),
                own,
            },
        ))
    } else {
        let encoding = match config.bloom_fpr {
            None => SetEncoding::Raw,
            Some(rate) => SetEncoding::Bloom(FalsePositiveRate::new(rate).map_err(local_psi)?),
        };
        let responder = CardinalityResponder::new(&key, &elements, encoding).map_err(local_psi)?;
        Ok(Transition::to(
            Vec::new(),
            AwaitBlindedSet {
                responder,
                key: config.key.clone(),
                own,
                raw: config.bloom_fpr.is_none(),
            },
        ))
    }
}

/// Initiator: waiting for the responder's set.
struct AwaitReply {
    state: CardinalityInitiatorAwaitingReply,
    key: String,
    own: usize,
}

impl State for AwaitReply {
    fn name(&self) -> &'static str {
        "while waiting for the cardinality reply"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::PsiCardinalityReply,
            round: 0,
            limit: WireLimits::default().max_message_bytes(),
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let reply = CardinalityReply::decode(&bytes, &WireLimits::default()).map_err(peer_psi)?;
        let outcome = self.state.handle_reply(&reply).map_err(peer_psi)?;
        if let Some(size) = outcome.peer_set_size {
            cx.learn_set_size(ledger, &self.key, size as u64);
        }
        ledger.record_revealed(Disclosure::SetSize {
            key: self.key.clone(),
            size: self.own as u64,
        });
        cx.learn_intersection(ledger, &self.key, outcome.intersection_size as u64);
        if matches!(reply.responder_set(), ResponderSet::Bloom(_)) {
            cx.learned.expected_false_positives = Some(outcome.expected_false_positives);
        }
        let send = split(
            MessageKind::IntersectionSize,
            0,
            payload::encode_intersection_size(outcome.intersection_size as u64),
        );
        Ok(Transition::new(send, Next::Finish))
    }
}

/// Responder: waiting for the initiator's blinded set.
struct AwaitBlindedSet {
    responder: CardinalityResponder,
    key: String,
    own: usize,
    raw: bool,
}

impl State for AwaitBlindedSet {
    fn name(&self) -> &'static str {
        "while waiting for the blinded set"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::PsiBlindedSet,
            round: 0,
            limit: WireLimits::default().max_message_bytes(),
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let request = BlindedSet::decode(&bytes, &WireLimits::default()).map_err(peer_psi)?;
        let peer = request.len() as u64;
        let reply = self
            .responder
            .handle_blinded_set(&request, &mut cx.rng)
            .map_err(peer_psi)?;
        cx.learn_set_size(ledger, &self.key, peer);
        if self.raw {
            ledger.record_revealed(Disclosure::SetSize {
                key: self.key.clone(),
                size: self.own as u64,
            });
        }
        let send = split(MessageKind::PsiCardinalityReply, 0, reply.encode());
        Ok(Transition::to(send, AwaitSize { key: self.key }))
    }
}

/// Responder: waiting for the count the initiator found.
struct AwaitSize {
    key: String,
}

impl State for AwaitSize {
    fn name(&self) -> &'static str {
        "while waiting for the intersection size"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::IntersectionSize,
            round: 0,
            limit: 8,
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let size = payload::decode_intersection_size(&bytes)?;
        cx.learn_intersection(ledger, &self.key, size);
        Ok(Transition::new(Vec::new(), Next::AwaitDone))
    }
}
