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
//! # Dice from the counts
//! The comparing side learns per group `s = shared`, its own size `x` and the peer's padded
//! size `p`, which stands for a peer count `y` in [`SizeBuckets::bounds`]`(p) = (lo, hi)`,
//! so `y` lies in `[max(lo, s), hi]`. The field's Dice is taken as its upper bound over the
//! sizes the bucket allows, `2s / (x + max(lo, s))`: a pair whose fields agree scores exactly
//! as with exact sizes (`s = x = y` gives 1), and a pair that shares few tokens scores low
//! whatever the padding. A field is left out of the score (missing) when either side's group
//! is empty.

use blindlink_psi::{
    GroupCount, GroupedAnswerer, GroupedAnswererOutcome, GroupedAnswererReady, GroupedLimits,
    GroupedOutcome, GroupedQuerier, GroupedQuerierAwaitingReply, GroupedQuery, GroupedReply,
    SizeBuckets, TokenGroup,
};

use super::MAX_FIELD_TOKENS;
use super::chunks::split;
use super::common::{Context, local_psi, peer_psi};
use super::data::PartyData;
use super::shell::Expect;
use crate::{Disclosure, DisclosureLedger, Message, MessageKind, ProtocolError};

/// Most groups one grouped exchange may hold (pairs × fields).
pub(crate) const MAX_GROUPS: usize = 1 << 22;
/// Largest reassembled grouped message this side accepts.
const MAX_GROUPED_BYTES: usize = 1 << 30;
const LABEL_TAG: &[u8] = b"blindlink/v1/protocol/pair";

/// The grouped PSI's bounds for these buckets: [`MAX_GROUPS`] groups of at most the padded
/// size of a full field.
pub(crate) fn limits(buckets: &SizeBuckets) -> GroupedLimits {
    GroupedLimits {
        max_groups: MAX_GROUPS,
        max_group_size: buckets.padded(MAX_FIELD_TOKENS),
    }
}

/// The reassembly bound of a grouped message of `groups` groups.
pub(crate) fn message_limit(buckets: &SizeBuckets, groups: usize) -> usize {
    GroupedLimits {
        max_groups: groups,
        max_group_size: limits(buckets).max_group_size,
    }
    .max_message_bytes()
    .min(MAX_GROUPED_BYTES)
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

/// The groups of one pair: one per field of `record_fields`, labelled by `name`.
pub(crate) fn pair_groups(name: &[u8], data: &PartyData, record: usize, out: &mut Vec<TokenGroup>) {
    for field in 0..data.field_count() {
        out.push(TokenGroup {
            label: label(name, field),
            tokens: data.field(record, field).map(<[u8]>::to_vec).collect(),
        });
    }
}

/// The querier starts: the query as messages.
pub(crate) fn query(
    cx: &mut Context,
    groups: &[TokenGroup],
    buckets: &SizeBuckets,
) -> Result<(GroupedQuerierAwaitingReply, Vec<Message>), ProtocolError> {
    let (state, query) =
        GroupedQuerier::start(&cx.session, groups, buckets, &limits(buckets), &mut cx.rng)
            .map_err(local_psi)?;
    Ok((
        state,
        split(MessageKind::PsiGroupedQuery, 0, query.encode()),
    ))
}

/// The answerer blinds its groups (before the query arrives, where the protocol allows).
pub(crate) fn prepare_answer(
    cx: &mut Context,
    groups: &[TokenGroup],
    buckets: &SizeBuckets,
) -> Result<GroupedAnswererReady, ProtocolError> {
    GroupedAnswerer::start(&cx.session, groups, buckets, &limits(buckets), &mut cx.rng)
        .map_err(local_psi)
}

/// The answerer answers a query.
pub(crate) fn answer(
    ready: GroupedAnswererReady,
    bytes: &[u8],
    buckets: &SizeBuckets,
) -> Result<(Vec<Message>, GroupedAnswererOutcome), ProtocolError> {
    let query = GroupedQuery::decode(bytes, &limits(buckets)).map_err(peer_psi)?;
    let (reply, outcome) = ready.handle_query(&query).map_err(peer_psi)?;
    Ok((
        split(MessageKind::PsiGroupedReply, 0, reply.encode()),
        outcome,
    ))
}

/// The querier counts the shared tokens of every group.
pub(crate) fn counts(
    state: GroupedQuerierAwaitingReply,
    bytes: &[u8],
    buckets: &SizeBuckets,
) -> Result<GroupedOutcome, ProtocolError> {
    let reply = GroupedReply::decode(bytes, &limits(buckets)).map_err(peer_psi)?;
    state.handle_reply(&reply).map_err(peer_psi)
}

/// What the answerer waits for.
pub(crate) fn expect_query(buckets: &SizeBuckets, groups: usize) -> Expect {
    Expect {
        kind: MessageKind::PsiGroupedQuery,
        round: 0,
        limit: message_limit(buckets, groups),
    }
}

/// What the querier waits for.
pub(crate) fn expect_reply(buckets: &SizeBuckets, groups: usize) -> Expect {
    Expect {
        kind: MessageKind::PsiGroupedReply,
        round: 0,
        limit: message_limit(buckets, groups),
    }
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

/// The ledger entries of one compared pair, the same on both sides: the comparing side
/// learned each field's shared-token count and the other side's padded size
/// (`answerer_padded`); the other side learned the comparing side's padded sizes
/// (`querier_padded`).
pub(crate) fn record_pair(
    ledger: &mut DisclosureLedger,
    comparing: bool,
    pair: String,
    answerer_padded: Vec<u32>,
    querier_padded: Vec<u32>,
) {
    let shared = Disclosure::SharedTokenCounts {
        pair: pair.clone(),
        peer_padded: answerer_padded,
    };
    let padded = Disclosure::PaddedTokenCounts {
        pair,
        padded: querier_padded,
    };
    if comparing {
        ledger.record_learned(shared);
        ledger.record_revealed(padded);
    } else {
        ledger.record_revealed(shared);
        ledger.record_learned(padded);
    }
}
