//! Comparing pairs of records field by field through the grouped PSI cardinality
//! (`blindlink-psi`'s [`GroupedQuerier`] / [`GroupedAnswerer`]), shared by `validate` and
//! `fuzzy`.
//!
//! # Groups
//! One group per compared pair and field, listed by both sides in the same order with the same
//! label: `"blindlink/v1/protocol/pair" ‖ u8(len name) ‖ name ‖ u16(field index)`, where the
//! pair's name is what both sides already hold (validate: the link id and the holder number;
//! fuzzy: the revealing side's candidate position and the pair's number among that
//! candidate's pairs). The PSI hashes every token together with the session id and the label,
//! so no point can be correlated across pairs, fields or sessions.
//!
//! A present field's tokens are given to the PSI as they are; a missing field is an empty
//! group, which the PSI sends as no point at all ([`SizeBuckets::padded`]`(0) = 0`), so both
//! sides tell "the peer's field is missing" (padded size 0) from "the peer's one-token field
//! differs" (padded size 1, nothing shared) by the size alone. (An earlier version added a
//! presence marker token to every present field and padded an empty group to one point: the
//! same information, five more points per side per pair.)
//!
//! # Batches
//! The pairs are compared a batch of [`ValidateConfig::batch_pairs`](super::ValidateConfig)
//! pairs at a time (2,048 by default, a handshake parameter): batch `k` is pairs
//! `[k·B, (k+1)·B)`, every field of each, as one grouped-PSI query and one reply, both sent
//! with the chunk round `k mod 2¹⁶`. The querier keeps [`WINDOW`] batches in flight (it builds
//! batch `k+1` while the answerer answers batch `k`), folds each reply's counts into its
//! per-pair results and drops the batch; the answerer blinds batch 0's groups when the pair
//! plan arrives, and each later batch's when its query has arrived (after the previous reply
//! has gone out), then answers it. Each batch has its own secrets on both sides. A session
//! without pairs still sends one empty batch, so a session of at most `B` pairs sends exactly
//! the messages of the unbatched protocol. Each side knows the number of pairs before the
//! first query (the pair plan), so a batch with another number of groups, a batch out of
//! order or past the end, and too few or too many batches are refused: by the reassembly bound
//! and the round of the awaited batch, the grouped PSI's group count, and the kind of message
//! after the last batch. What each side learns is unchanged: per pair and field the same
//! counts and padded sizes; the batch boundaries follow from the number of pairs, which both
//! know.
//!
//! # Dice from the counts
//! The comparing side learns per group `s = shared`, its own size `x` and the peer's padded
//! size `p`, which stands for a peer count `y` in [`SizeBuckets::bounds`]`(p) = (lo, hi)`,
//! so `y` lies in `[max(lo, s), hi]`. The field's Dice is taken as its upper bound over the
//! sizes the bucket allows, `2s / (x + max(lo, s))`: a pair whose fields agree scores exactly
//! as with exact sizes (`s = x = y` gives 1), and a pair that shares few tokens scores low
//! whatever the padding. A field is left out of the score (missing) when either side's group
//! is empty.

use std::collections::VecDeque;
use std::ops::Range;

use blindlink_psi::{
    GroupCount, GroupedAnswerer, GroupedAnswererReady, GroupedLimits, GroupedQuerier,
    GroupedQuerierAwaitingReply, GroupedQuery, GroupedReply, SizeBuckets, TokenGroup,
};

use super::MAX_FIELD_TOKENS;
use super::chunks::split;
use super::common::{Context, local_psi, peer_psi};
use super::data::{FieldReader, PartyData};
use super::shell::Expect;
use crate::{Message, MessageKind, ProtocolError};

/// Pairs per batch unless the configuration says otherwise.
pub(crate) const DEFAULT_BATCH_PAIRS: usize = 2048;
/// Most pairs per batch (a batch of 16 fields is then at most 1,048,576 groups).
pub(crate) const MAX_BATCH_PAIRS: usize = 1 << 16;
/// Batches the querier keeps in flight: two, so it builds the next query while the answerer
/// answers the previous one.
pub(crate) const WINDOW: usize = 2;
/// Largest reassembled grouped message this side accepts.
const MAX_GROUPED_BYTES: usize = 1 << 30;
const LABEL_TAG: &[u8] = b"blindlink/v1/protocol/pair";

/// Checks a configured batch size.
///
/// # Errors
/// [`ProtocolError::Local`] outside 1 to [`MAX_BATCH_PAIRS`].
pub(crate) fn check_batch_pairs(pairs: usize) -> Result<(), ProtocolError> {
    if (1..=MAX_BATCH_PAIRS).contains(&pairs) {
        return Ok(());
    }
    Err(ProtocolError::Local {
        what: "grouped.batch_pairs",
        reason: format!("{pairs} is outside 1 to {MAX_BATCH_PAIRS}"),
    })
}

/// The handshake parameter of the batch size: listed only when it is not the default, so a
/// default session's parameters are those of the protocol before batches.
pub(crate) fn batch_parameter(pairs: usize, entries: &mut Vec<(String, String)>) {
    if pairs != DEFAULT_BATCH_PAIRS {
        entries.push(("grouped.batch_pairs".into(), pairs.to_string()));
    }
}

/// The grouped PSI's bounds for a message of `groups` groups of at most the padded size of a
/// full field.
fn limits(buckets: &SizeBuckets, groups: usize) -> GroupedLimits {
    GroupedLimits {
        max_groups: groups,
        max_group_size: buckets.padded(MAX_FIELD_TOKENS),
    }
}

/// The reassembly bound of a grouped message of `groups` groups.
fn message_limit(buckets: &SizeBuckets, groups: usize) -> usize {
    limits(buckets, groups)
        .max_message_bytes()
        .min(MAX_GROUPED_BYTES)
}

/// How a session's pairs are cut into batches; both sides compute the same from the number
/// of pairs (the pair plan) and the committed batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batches {
    pairs: usize,
    per_batch: usize,
    fields: usize,
}

impl Batches {
    pub(crate) fn new(pairs: usize, per_batch: usize, fields: usize) -> Self {
        Self {
            pairs,
            per_batch: per_batch.max(1),
            fields,
        }
    }

    /// The number of batches: at least one (a session without pairs sends one empty batch).
    pub(crate) fn count(&self) -> usize {
        self.pairs.div_ceil(self.per_batch).max(1)
    }

    /// The pairs of batch `k`.
    pub(crate) fn pairs_of(&self, k: usize) -> Range<usize> {
        let start = k.saturating_mul(self.per_batch).min(self.pairs);
        start..start.saturating_add(self.per_batch).min(self.pairs)
    }

    /// The groups of batch `k` (pairs × fields).
    fn groups_of(&self, k: usize) -> usize {
        self.pairs_of(k).len().saturating_mul(self.fields)
    }

    /// The chunk round batch `k` travels with.
    fn round(k: usize) -> u16 {
        (k % (1 << 16)) as u16
    }
}

/// One batch of pairs compared, as the querier folds it in: the pairs, and per pair and field
/// (pair-major) the counts and this side's padded sizes.
pub(crate) struct QuerierBatch {
    pub(crate) pairs: Range<usize>,
    pub(crate) counts: Vec<GroupCount>,
    pub(crate) own_padded: Vec<u32>,
}

/// One batch of pairs answered: the pairs, and per pair and field this side's and the
/// querier's padded sizes.
pub(crate) struct AnswererBatch {
    pub(crate) pairs: Range<usize>,
    pub(crate) own_padded: Vec<u32>,
    pub(crate) peer_padded: Vec<u32>,
}

struct InFlight {
    batch: usize,
    state: GroupedQuerierAwaitingReply,
    own_padded: Vec<u32>,
}

/// The querier's side of the batched grouped PSI.
pub(crate) struct BatchQuerier {
    batches: Batches,
    buckets: SizeBuckets,
    next: usize,
    in_flight: VecDeque<InFlight>,
}

impl BatchQuerier {
    pub(crate) fn new(batches: Batches, buckets: SizeBuckets) -> Self {
        Self {
            batches,
            buckets,
            next: 0,
            in_flight: VecDeque::with_capacity(WINDOW),
        }
    }

    /// Builds and sends the next batches until [`WINDOW`] are in flight; `build` gives the
    /// groups of a range of pairs, every field of each, pair-major.
    pub(crate) fn fill(
        &mut self,
        cx: &mut Context,
        mut build: impl FnMut(&Context, Range<usize>) -> Result<Vec<TokenGroup>, ProtocolError>,
    ) -> Result<Vec<Message>, ProtocolError> {
        let mut send = Vec::new();
        while self.in_flight.len() < WINDOW && self.next < self.batches.count() {
            let batch = self.next;
            let groups = build(cx, self.batches.pairs_of(batch))?;
            let limits = limits(&self.buckets, groups.len());
            let own_padded = own_padded(&groups, &self.buckets);
            let (state, query) =
                GroupedQuerier::start(&cx.session, &groups, &self.buckets, &limits, &mut cx.rng)
                    .map_err(local_psi)?;
            drop(groups);
            send.extend(split(
                MessageKind::PsiGroupedQuery,
                Batches::round(batch),
                query.encode(),
            ));
            self.in_flight.push_back(InFlight {
                batch,
                state,
                own_padded,
            });
            self.next += 1;
        }
        Ok(send)
    }

    /// The reply of the oldest batch in flight.
    pub(crate) fn expects(&self) -> Expect {
        let batch = self.in_flight.front().map_or(self.next, |f| f.batch);
        Expect {
            kind: MessageKind::PsiGroupedReply,
            round: Batches::round(batch),
            limit: message_limit(&self.buckets, self.batches.groups_of(batch)),
        }
    }

    /// Counts the shared tokens of the oldest batch in flight from its reply.
    ///
    /// # Errors
    /// The reply does not decode or does not answer the batch's query.
    pub(crate) fn handle_reply(&mut self, bytes: &[u8]) -> Result<QuerierBatch, ProtocolError> {
        let Some(InFlight {
            batch,
            state,
            own_padded,
        }) = self.in_flight.pop_front()
        else {
            return Err(ProtocolError::Local {
                what: "grouped psi",
                reason: "a reply with no batch in flight".into(),
            });
        };
        let limits = limits(&self.buckets, self.batches.groups_of(batch));
        let reply = GroupedReply::decode(bytes, &limits).map_err(peer_psi)?;
        let outcome = state.handle_reply(&reply).map_err(peer_psi)?;
        Ok(QuerierBatch {
            pairs: self.batches.pairs_of(batch),
            counts: outcome.groups,
            own_padded,
        })
    }

    /// Whether every batch's reply has been handled.
    pub(crate) fn finished(&self) -> bool {
        self.in_flight.is_empty() && self.next >= self.batches.count()
    }
}

/// The answerer's side of the batched grouped PSI.
pub(crate) struct BatchAnswerer {
    batches: Batches,
    buckets: SizeBuckets,
    next: usize,
    ready: Option<(GroupedAnswererReady, Vec<u32>)>,
}

impl BatchAnswerer {
    pub(crate) fn new(batches: Batches, buckets: SizeBuckets) -> Self {
        Self {
            batches,
            buckets,
            next: 0,
            ready: None,
        }
    }

    /// Blinds the groups of the next batch unless that is done (nothing after the last). The
    /// first batch is blinded when the pair plan arrives, ahead of its query; each later one
    /// when its query has arrived, after the previous reply has gone out, so the querier reads
    /// reply `k` while this side blinds batch `k + 1`.
    pub(crate) fn prepare(
        &mut self,
        cx: &mut Context,
        build: impl FnOnce(&Context, Range<usize>) -> Result<Vec<TokenGroup>, ProtocolError>,
    ) -> Result<(), ProtocolError> {
        if self.ready.is_some() || self.next >= self.batches.count() {
            return Ok(());
        }
        let groups = build(cx, self.batches.pairs_of(self.next))?;
        let limits = limits(&self.buckets, groups.len());
        let ready =
            GroupedAnswerer::start(&cx.session, &groups, &self.buckets, &limits, &mut cx.rng)
                .map_err(local_psi)?;
        self.ready = Some((ready, own_padded(&groups, &self.buckets)));
        Ok(())
    }

    /// The query of the next batch.
    pub(crate) fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::PsiGroupedQuery,
            round: Batches::round(self.next),
            limit: message_limit(&self.buckets, self.batches.groups_of(self.next)),
        }
    }

    /// Answers the next batch's query (blinded by [`BatchAnswerer::prepare`]).
    ///
    /// # Errors
    /// The query does not decode or has another number of groups than the batch.
    pub(crate) fn answer(
        &mut self,
        bytes: &[u8],
    ) -> Result<(Vec<Message>, AnswererBatch), ProtocolError> {
        let batch = self.next;
        let Some((ready, own_padded)) = self.ready.take() else {
            return Err(ProtocolError::Local {
                what: "grouped psi",
                reason: format!("batch {batch} was not prepared"),
            });
        };
        let limits = limits(&self.buckets, self.batches.groups_of(batch));
        let query = GroupedQuery::decode(bytes, &limits).map_err(peer_psi)?;
        let (reply, outcome) = ready.handle_query(&query).map_err(peer_psi)?;
        drop(query);
        let send = split(
            MessageKind::PsiGroupedReply,
            Batches::round(batch),
            reply.encode(),
        );
        self.next += 1;
        Ok((
            send,
            AnswererBatch {
                pairs: self.batches.pairs_of(batch),
                own_padded,
                peer_padded: outcome.peer_padded,
            },
        ))
    }

    /// Whether every batch has been answered.
    pub(crate) fn finished(&self) -> bool {
        self.next >= self.batches.count()
    }
}

/// The group label of field `field` of the pair named `name`.
pub(crate) fn label(name: &[u8], field: usize) -> Vec<u8> {
    let mut label = Vec::with_capacity(LABEL_TAG.len() + 3 + name.len());
    label.extend_from_slice(LABEL_TAG);
    label.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    label.extend_from_slice(name);
    label.extend_from_slice(&u16::try_from(field).unwrap_or(u16::MAX).to_be_bytes());
    label
}

/// The groups of one pair: one per compared field of `record` (read through `fields`, which
/// tokenises kept values), labelled by `name`.
///
/// # Errors
/// A kept value does not tokenise or has too many tokens ([`FieldReader::tokens`]).
pub(crate) fn pair_groups(
    name: &[u8],
    data: &PartyData,
    fields: &mut FieldReader<'_>,
    record: usize,
    out: &mut Vec<TokenGroup>,
) -> Result<(), ProtocolError> {
    for field in 0..data.field_count() {
        let mut tokens = Vec::new();
        fields.tokens(record, field, &mut tokens)?;
        out.push(TokenGroup {
            label: label(name, field),
            tokens,
        });
    }
    Ok(())
}

/// The Dice coefficient of one field from its counts (see the module documentation), or
/// `None` when the field is missing on either side.
pub(crate) fn field_dice(count: &GroupCount, buckets: &SizeBuckets) -> Option<f64> {
    if count.own_size == 0 || count.peer_padded == 0 {
        return None;
    }
    let (low, _) = buckets.bounds(count.peer_padded as usize)?;
    let peer_min = low.max(count.shared as usize);
    let sizes = count.own_size as usize + peer_min;
    Some(2.0 * f64::from(count.shared) / sizes as f64)
}

/// The padded sizes of this side's groups (what the peer learns of them).
pub(crate) fn own_padded(groups: &[TokenGroup], buckets: &SizeBuckets) -> Vec<u32> {
    groups
        .iter()
        .map(|g| u32::try_from(buckets.padded(g.tokens.len())).unwrap_or(u32::MAX))
        .collect()
}
