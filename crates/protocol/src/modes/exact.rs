//! `exact`: mutual ECDH-PSI on a cascade of match keys, one PSI round per key over the records
//! the earlier rounds left unlinked ([`blindlink_psi::CascadePlan`]). Each side learns which
//! of its records matched and a link id per match, both the same on both sides. `validate`
//! runs the same cascade on its one ID key and continues from [`AfterCascade::Validate`].
//!
//! ```text
//! initiator                                   responder           (per round r)
//! ──── psi_blinded_set (r) ─────────────────▶ CascadeRound (ResponderReady)
//! CascadeRound ◀── psi_mutual_reply (r) ─────
//! ──── psi_reblinded_set (r) ───────────────▶ CascadeRound (ResponderAwaitingReblinded)
//! next round, or: initiator waits for done; responder sends done.
//! ```

use std::sync::Arc;

use blindlink_psi::{CascadeKeys, CascadePlan, CascadeStep, MatchKeyName, PendingRound};

use super::common::{Context, Mutual, PsiIncoming, RecordLink, StreamedStep, local_psi};
use super::shell::{ChunkDecoder, Expect, Next, State, Transition};
use super::{ExactConfig, PartyData, validate};
use crate::{DisclosureLedger, ProtocolError, Role};

/// What follows the last round of the cascade.
pub(crate) enum AfterCascade {
    /// `exact`: nothing; the responder ends the session.
    Exact,
    /// `validate`: the linked pairs' fields are compared.
    Validate(Box<validate::Settings>),
}

pub(crate) fn start(
    cx: &mut Context,
    ledger: &mut DisclosureLedger,
    config: &ExactConfig,
) -> Result<Transition, ProtocolError> {
    let plan = plan(cx, &config.keys)?;
    next_round(cx, ledger, plan, AfterCascade::Exact)
}

/// The cascade plan of this side's records over `keys`, reading their key values where
/// they are (no copy).
pub(crate) fn plan(cx: &Context, keys: &[String]) -> Result<CascadePlan, ProtocolError> {
    let names = keys
        .iter()
        .map(|k| MatchKeyName::new(k).map_err(local_psi))
        .collect::<Result<Vec<_>, _>>()?;
    if !cx.data.is_empty() && cx.data.key_count() < keys.len() {
        return Err(local_psi(blindlink_psi::PsiError::Cascade {
            reason: format!(
                "record 0 has {} key values, expected {}",
                cx.data.key_count(),
                keys.len()
            ),
        }));
    }
    CascadePlan::from_source(names, Arc::new(RecordKeys(Arc::clone(&cx.data)))).map_err(local_psi)
}

/// A party's records as the cascade reads them.
struct RecordKeys(Arc<PartyData>);

impl CascadeKeys for RecordKeys {
    fn record_count(&self) -> usize {
        self.0.len()
    }

    fn key(&self, record: usize, round: usize) -> Option<&[u8]> {
        self.0.key(record, round)
    }
}

/// Starts the plan's next round, or ends the cascade.
pub(crate) fn next_round(
    cx: &mut Context,
    ledger: &mut DisclosureLedger,
    plan: CascadePlan,
    then: AfterCascade,
) -> Result<Transition, ProtocolError> {
    match plan.next_round() {
        CascadeStep::Round(pending) => {
            let key = pending.key().clone();
            let round = round_number(&pending);
            let (mutual, send) = Mutual::start_streamed(cx, &key, &pending.elements(), round)?;
            Ok(Transition::streamed_to(
                send,
                CascadeRound::new(pending, mutual, then),
            ))
        }
        CascadeStep::Done(outcome) => {
            for ambiguous in &outcome.ambiguous {
                for &record in &ambiguous.records {
                    cx.ambiguous[record] = true;
                }
            }
            for link in &outcome.links {
                *cx.link_mut(link.record) = Some(RecordLink {
                    link_id: link.link_id.0,
                    key: u8::try_from(link.round).ok(),
                    score: None,
                    suspected: false,
                });
            }
            match then {
                AfterCascade::Exact => Ok(Transition::new(
                    Vec::new(),
                    if cx.role == Role::Responder {
                        Next::Finish
                    } else {
                        Next::AwaitDone
                    },
                )),
                AfterCascade::Validate(settings) => validate::after_psi(cx, ledger, *settings),
            }
        }
    }
}

fn round_number(pending: &PendingRound) -> u16 {
    u16::try_from(pending.round()).unwrap_or(u16::MAX)
}

/// One round of the cascade: waiting for the next mutual PSI message of this round, which it
/// decodes into points as its chunks arrive; its answer is sent a chunk at a time.
struct CascadeRound {
    pending: PendingRound,
    mutual: Mutual,
    then: AfterCascade,
    incoming: PsiIncoming,
}

impl CascadeRound {
    fn new(pending: PendingRound, mutual: Mutual, then: AfterCascade) -> Self {
        let incoming = mutual.incoming();
        Self {
            pending,
            mutual,
            then,
            incoming,
        }
    }
}

impl State for CascadeRound {
    fn name(&self) -> &'static str {
        "during the private set intersection"
    }

    fn expects(&self) -> Expect {
        self.mutual.expects(round_number(&self.pending))
    }

    fn decoder(&mut self) -> Option<&mut dyn ChunkDecoder> {
        Some(&mut self.incoming)
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        _bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self {
            pending,
            mutual,
            then,
            incoming,
        } = *self;
        let round = round_number(&pending);
        match mutual.step_streamed(incoming, round)? {
            StreamedStep::Continue(mutual, send) => Ok(Transition::streamed_to(
                send,
                CascadeRound::new(pending, mutual, then),
            )),
            StreamedStep::Finished(outcome, send) => {
                let key = pending.key().as_str().to_owned();
                cx.record_mutual(ledger, &key, pending.element_count(), &outcome);
                let plan = pending.finish(&outcome).map_err(local_psi)?;
                drop(outcome);
                Ok(next_round(cx, ledger, plan, then)?.preceded_by(send))
            }
        }
    }
}
