//! The end of `fuzzy` and `clk-exchange`: the comparing side picks one-to-one links from
//! scored candidate pairs, gives each a fresh link id and returns them to the other side by
//! the positions that side numbered its candidate records with.

use blindlink_matching::{Candidate, greedy};
use rand_core::Rng;

use super::chunks::split;
use super::common::{Context, RecordLink};
use super::payload::{self, SentLink};
use super::shell::{Expect, Next, State, Transition};
use crate::{Disclosure, DisclosureLedger, Message, MessageKind, ProtocolError};

/// Ledger key of the links the comparing side picked.
pub(crate) const LINK_KEY: &str = "dice";

/// Comparing side: one-to-one links from `pairs` (`a`: own record, `b`: the peer's position),
/// and the `link_ids` message that returns them.
pub(crate) fn link_pairs(
    cx: &mut Context,
    ledger: &mut DisclosureLedger,
    pairs: &[Candidate],
) -> Result<Vec<Message>, ProtocolError> {
    let mut kept = greedy(pairs).map_err(|e| ProtocolError::Local {
        what: "candidate pairs",
        reason: e.to_string(),
    })?;
    kept.sort_unstable_by_key(|c| c.b);
    let mut sent = Vec::with_capacity(kept.len());
    for pair in &kept {
        let mut link_id = [0u8; 32];
        cx.rng.fill_bytes(&mut link_id);
        let score = payload::quantise(pair.score);
        *cx.link_mut(pair.a) = Some(RecordLink {
            link_id,
            key: None,
            score: Some(payload::dequantise(score)),
            suspected: false,
        });
        sent.push(SentLink {
            position: u32::try_from(pair.b).unwrap_or(u32::MAX),
            link_id,
            score,
        });
    }
    Context::learn_both(
        ledger,
        Disclosure::MatchedRecords {
            key: LINK_KEY.into(),
            count: kept.len() as u64,
        },
    );
    Ok(split(
        MessageKind::LinkIds,
        0,
        payload::encode_link_ids(&sent),
    ))
}

/// The other side: waiting for the link ids; `positions[p]` is the record it numbered `p`.
pub(crate) struct AwaitLinkIds {
    pub(crate) positions: Vec<usize>,
}

impl State for AwaitLinkIds {
    fn name(&self) -> &'static str {
        "while waiting for the link ids"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::LinkIds,
            round: 0,
            limit: 4 + self.positions.len() * 40,
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let links = payload::decode_link_ids(&bytes, self.positions.len())?;
        for link in &links {
            *cx.link_mut(self.positions[link.position as usize]) = Some(RecordLink {
                link_id: link.link_id,
                key: None,
                score: Some(payload::dequantise(link.score)),
                suspected: false,
            });
        }
        Context::learn_both(
            ledger,
            Disclosure::MatchedRecords {
                key: LINK_KEY.into(),
                count: links.len() as u64,
            },
        );
        Ok(Transition::new(Vec::new(), Next::Finish))
    }
}
