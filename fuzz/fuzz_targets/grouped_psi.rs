//! Both decoders of grouped PSI (`GroupedQuery`, `GroupedReply`) on arbitrary bytes, then the
//! session that consumes the decoded message.
//!
//! Properties: no decoder panics; a message that decodes re-encodes to exactly the same bytes
//! (the format is canonical) and still decodes under limits equal to its own largest counts,
//! and not under limits one below them; a session handed a decoded message answers or fails
//! with a `PsiError`, never a panic; an answer of ours decodes back; a querier's counts never
//! exceed what either side holds.
#![no_main]

use blindlink_psi::{
    GroupedAnswerer, GroupedLimits, GroupedQuerier, GroupedQuery, GroupedReply, SizeBuckets,
    TokenGroup,
};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Sessions are only started for messages this small, so one input stays cheap.
const MAX_SESSION_POINTS: usize = 64;

const SESSION: [u8; 16] = [0x5a; 16];

fuzz_target!(|data: &[u8]| {
    let limits = GroupedLimits::default();
    if let Ok(query) = GroupedQuery::decode(data, &limits) {
        assert_eq!(query.encode(), data, "grouped query is not canonical");
        let sizes = query.padded_sizes();
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let tight = GroupedLimits {
            max_groups: query.len(),
            max_group_size: largest,
        };
        assert_eq!(GroupedQuery::decode(data, &tight).as_ref(), Ok(&query));
        if !query.is_empty() {
            let fewer = GroupedLimits {
                max_groups: query.len() - 1,
                ..tight
            };
            assert!(
                GroupedQuery::decode(data, &fewer).is_err(),
                "group limit not enforced"
            );
        }
        if largest > 0 {
            let smaller = GroupedLimits {
                max_group_size: largest - 1,
                ..tight
            };
            assert!(
                GroupedQuery::decode(data, &smaller).is_err(),
                "size limit not enforced"
            );
        }
        if query.point_count() <= MAX_SESSION_POINTS {
            answer(&query, &SizeBuckets::default());
            answer(&query, &SizeBuckets::exact());
        }
    }
    if let Ok(reply) = GroupedReply::decode(data, &limits) {
        assert_eq!(reply.encode(), data, "grouped reply is not canonical");
        if reply.point_count() <= MAX_SESSION_POINTS {
            consume_reply(data, &reply);
        }
    }
});

/// An answerer with as many groups as the query answers it or refuses it with an error; an
/// answer is a reply that decodes back.
fn answer(query: &GroupedQuery, buckets: &SizeBuckets) {
    let own = groups(&vec![2; query.len()]);
    let answerer = GroupedAnswerer::start(
        &SESSION,
        &own,
        buckets,
        &GroupedLimits::default(),
        &mut rng(1),
    )
    .expect("small groups");
    if let Ok((reply, outcome)) = answerer.handle_query(query) {
        let sizes: Vec<u32> = query.padded_sizes().iter().map(|&s| s as u32).collect();
        assert_eq!(outcome.peer_padded, sizes);
        let decoded = GroupedReply::decode(&reply.encode(), &GroupedLimits::default());
        assert_eq!(
            decoded.as_ref(),
            Ok(&reply),
            "our own reply does not decode"
        );
    }
}

/// A querier whose query had exactly the reply's doubled sizes (exact buckets, no padding)
/// consumes the reply: an error, or counts bounded by both sides' sizes.
fn consume_reply(data: &[u8], reply: &GroupedReply) {
    let g = reply.len();
    // Header: version, kind, g, then (n_i, m_i) per group.
    let sizes: Vec<usize> = (0..g).map(|i| count_at(data, 6 + 8 * i)).collect();
    let own = groups(&sizes);
    let (querier, _) = GroupedQuerier::start(
        &SESSION,
        &own,
        &SizeBuckets::exact(),
        &GroupedLimits::default(),
        &mut rng(2),
    )
    .expect("small groups");
    if let Ok(outcome) = querier.handle_reply(reply) {
        assert_eq!(outcome.groups.len(), g);
        for (count, &n) in outcome.groups.iter().zip(&sizes) {
            assert!(count.shared as usize <= n && count.shared <= count.peer_padded);
            assert_eq!(count.own_size as usize, n);
        }
    }
}

fn groups(sizes: &[usize]) -> Vec<TokenGroup> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| TokenGroup {
            label: format!("group {i}").into_bytes(),
            tokens: (0..n).map(|t| vec![t as u8 % 3]).collect(),
        })
        .collect()
}

/// The little-endian `u32` count at `offset` of a message that decoded (so it is present).
fn count_at(data: &[u8], offset: usize) -> usize {
    let raw = [
        data[offset],
        data[offset + 1],
        data[offset + 2],
        data[offset + 3],
    ];
    u32::from_le_bytes(raw) as usize
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}
