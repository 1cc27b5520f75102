//! `clk-exchange`, the labelled baseline (the anonlink model): the revealing side sends every
//! CLK, the comparing side computes all Dice coefficients, picks one-to-one links and returns
//! their link ids.
//!
//! # Security
//! Both parties hold the linkage secret, so the comparing side can decode every CLK it
//! receives. The configuration refuses the mode unless
//! [`super::ClkExchangeConfig::reveal_decodable_encodings`] is set, a handshake parameter both
//! sides must set; the ledger records the CLKs as [`crate::Disclosure::Clks`].
//!
//! ```text
//! revealing side                              comparing side
//! ──── all_clks ────────────────────────────▶ AwaitAllClks
//! AwaitLinkIds ◀── link_ids ─────────────────
//!   done ─────────────────────────────────▶ (done)
//! ```

use blindlink_matching::{CandidateSearch, ClkStore, DiceThreshold};

use super::ClkExchangeConfig;
use super::MAX_RECORDS;
use super::chunks::split;
use super::common::Context;
use super::linking::{self, AwaitLinkIds};
use super::payload;
use super::shell::{Expect, Next, State, Transition};
use crate::{Disclosure, DisclosureLedger, MessageKind, ProtocolError};

/// Largest `all_clks` message a comparing side accepts.
const MAX_ALL_CLKS_BYTES: usize = 1 << 30;

pub(crate) fn start(
    cx: &mut Context,
    ledger: &mut DisclosureLedger,
    config: &ClkExchangeConfig,
) -> Result<Transition, ProtocolError> {
    if cx.role == config.comparing {
        return Ok(Transition::to(
            Vec::new(),
            AwaitAllClks {
                filter_bits: config.filter_bits,
                dice_threshold: config.dice_threshold,
            },
        ));
    }
    let revealed: Vec<usize> = (0..cx.data.len())
        .filter(|&i| cx.data.clk(i).is_some())
        .collect();
    let clks: Vec<&[u8]> = revealed.iter().filter_map(|&i| cx.data.clk(i)).collect();
    let bytes = payload::encode_all_clks(config.filter_bits / 8, &clks);
    ledger.record_revealed(Disclosure::Clks {
        count: revealed.len() as u64,
    });
    Ok(Transition::to(
        split(MessageKind::AllClks, 0, bytes),
        AwaitLinkIds {
            positions: revealed,
        },
    ))
}

/// Comparing side: waiting for every CLK of the other side.
struct AwaitAllClks {
    filter_bits: usize,
    dice_threshold: f64,
}

impl State for AwaitAllClks {
    fn name(&self) -> &'static str {
        "while waiting for the clks"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::AllClks,
            round: 0,
            limit: MAX_ALL_CLKS_BYTES,
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let clk_bytes = self.filter_bits / 8;
        let (flat, count) = payload::decode_all_clks(&bytes, clk_bytes, MAX_RECORDS)?;
        ledger.record_learned(Disclosure::Clks {
            count: count as u64,
        });
        cx.learned.clks_received += count as u64;
        let theirs =
            ClkStore::from_bytes(self.filter_bits, &flat).map_err(|e| ProtocolError::Invalid {
                what: "clks",
                reason: e.to_string(),
            })?;
        let ours_index: Vec<usize> = (0..cx.data.len())
            .filter(|&i| cx.data.clk(i).is_some())
            .collect();
        let ours = ClkStore::from_clks(
            self.filter_bits,
            ours_index.iter().filter_map(|&i| cx.data.clk(i)),
        )
        .map_err(|e| ProtocolError::Local {
            what: "party data",
            reason: e.to_string(),
        })?;
        let threshold =
            DiceThreshold::new(self.dice_threshold).map_err(|e| ProtocolError::Local {
                what: "dice threshold",
                reason: e.to_string(),
            })?;
        let (mut pairs, _) = CandidateSearch::new(threshold)
            .collect(&ours, &theirs)
            .map_err(|e| ProtocolError::Invalid {
                what: "all clks",
                reason: e.to_string(),
            })?;
        for pair in &mut pairs {
            pair.a = ours_index[pair.a];
        }
        let send = linking::link_pairs(cx, ledger, &pairs)?;
        Ok(Transition::new(send, Next::AwaitDone))
    }
}
