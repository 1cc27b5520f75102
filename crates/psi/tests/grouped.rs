//! Grouped PSI cardinality: both parties in memory against a plain multiset intersection, the
//! golden hash-to-group vectors, and every decoder and session against hostile bytes.
// Test code throughout (helpers and proptest bodies included, which clippy.toml's
// allow-unwrap-in-tests does not see as tests): a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use blindlink_psi::{
    GroupCount, GroupedAnswerer, GroupedLimits, GroupedQuerier, GroupedQuery, GroupedReply,
    PsiError, SizeBuckets, TokenGroup, grouped_hash_to_group, grouped_in_memory, point_tag,
};
use curve25519_dalek::ristretto::CompressedRistretto;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SESSION: [u8; 16] = *b"grouped-test-sid";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn group(label: &str, tokens: &[&str]) -> TokenGroup {
    TokenGroup {
        label: label.as_bytes().to_vec(),
        tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
    }
}

fn multiset_intersection(x: &[Vec<u8>], y: &[Vec<u8>]) -> u32 {
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for t in y {
        *counts.entry(t).or_default() += 1;
    }
    let mut shared = 0;
    for t in x {
        if let Some(c) = counts.get_mut(t.as_slice())
            && *c > 0
        {
            *c -= 1;
            shared += 1;
        }
    }
    shared
}

/// Up to 12 groups of up to 20 tokens from a 5-letter alphabet, so repeats are frequent.
fn groups() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(0u8..5, 1..3), 0..20),
        0..12,
    )
}

fn labelled(groups: &[Vec<Vec<u8>>]) -> Vec<TokenGroup> {
    groups
        .iter()
        .enumerate()
        .map(|(i, tokens)| TokenGroup {
            label: format!("pair {i} / field").into_bytes(),
            tokens: tokens.clone(),
        })
        .collect()
}

fn scheme(which: u8) -> SizeBuckets {
    match which % 3 {
        0 => SizeBuckets::default(),
        1 => SizeBuckets::exact(),
        _ => SizeBuckets::tops(vec![2, 5, 7]).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every group's count is the plain multiset intersection, and each side learns exactly
    /// the other's padded sizes; the same through encoded messages.
    #[test]
    fn grouped_equals_plain_multiset_intersection(
        x in groups(), y_extra in groups(), which in any::<u8>(), seed in any::<u64>(),
    ) {
        // The answerer has as many groups as the querier: its own tokens, or the querier's
        // shifted by one so that some groups overlap.
        let y: Vec<Vec<Vec<u8>>> = (0..x.len())
            .map(|i| y_extra.get(i).cloned().unwrap_or_else(|| x[i].iter().skip(1).cloned().collect()))
            .collect();
        let buckets = scheme(which);
        let limits = GroupedLimits::default();
        let (xs, ys) = (labelled(&x), labelled(&y));
        let (ours, theirs) = grouped_in_memory(
            &SESSION, &xs, &ys, &buckets, &limits, &mut rng(seed), &mut rng(seed ^ 1),
        ).unwrap();
        let expected: Vec<GroupCount> = x.iter().zip(&y).map(|(a, b)| GroupCount {
            shared: multiset_intersection(a, b),
            own_size: a.len() as u32,
            peer_padded: buckets.padded(b.len()) as u32,
        }).collect();
        prop_assert_eq!(&ours.groups, &expected);
        let padded_x: Vec<u32> = x.iter().map(|a| buckets.padded(a.len()) as u32).collect();
        prop_assert_eq!(&theirs.peer_padded, &padded_x);

        // Through the wire.
        let (querier, query) = GroupedQuerier::start(&SESSION, &xs, &buckets, &limits, &mut rng(seed)).unwrap();
        let query = GroupedQuery::decode(&query.encode(), &limits).unwrap();
        let answerer = GroupedAnswerer::start(&SESSION, &ys, &buckets, &limits, &mut rng(seed ^ 1)).unwrap();
        let (reply, _) = answerer.handle_query(&query).unwrap();
        let bytes = reply.encode();
        let decoded = GroupedReply::decode(&bytes, &limits).unwrap();
        prop_assert_eq!(decoded.encode(), bytes);
        prop_assert_eq!(querier.handle_reply(&decoded).unwrap().groups, expected);
    }

    /// The decoders never panic on arbitrary bytes.
    #[test]
    fn decoders_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let limits = GroupedLimits { max_groups: 8, max_group_size: 8 };
        let _ = GroupedQuery::decode(&bytes, &limits);
        let _ = GroupedReply::decode(&bytes, &limits);
        let mut framed = vec![1, 5];
        framed.extend_from_slice(&bytes);
        let _ = GroupedQuery::decode(&framed, &limits);
        framed[1] = 6;
        let _ = GroupedReply::decode(&framed, &limits);
    }
}

#[test]
fn labels_and_sessions_separate_groups() {
    // The same tokens under another label or session share nothing.
    let limits = GroupedLimits::default();
    let buckets = SizeBuckets::default();
    let x = [group("a", &["t1", "t2"])];
    let (ours, _) = grouped_in_memory(
        &SESSION,
        &x,
        &[group("b", &["t1", "t2"])],
        &buckets,
        &limits,
        &mut rng(1),
        &mut rng(2),
    )
    .unwrap();
    assert_eq!(ours.groups[0].shared, 0);
    let (querier, query) =
        GroupedQuerier::start(&SESSION, &x, &buckets, &limits, &mut rng(1)).unwrap();
    let answerer = GroupedAnswerer::start(&[0; 16], &x, &buckets, &limits, &mut rng(2)).unwrap();
    let (reply, _) = answerer.handle_query(&query).unwrap();
    assert_eq!(querier.handle_reply(&reply).unwrap().groups[0].shared, 0);
}

#[test]
fn empty_groups_send_no_point() {
    // A missing field is an empty group: no point either way, and the sizes say so.
    let limits = GroupedLimits::default();
    let buckets = SizeBuckets::default();
    let x = [group("a", &[]), group("b", &["t1"]), group("c", &[])];
    let y = [group("a", &["t1", "t2"]), group("b", &[]), group("c", &[])];
    let (querier, query) =
        GroupedQuerier::start(&SESSION, &x, &buckets, &limits, &mut rng(1)).unwrap();
    assert_eq!(query.padded_sizes(), [0, 1, 0]);
    let query = GroupedQuery::decode(&query.encode(), &limits).unwrap();
    let answerer = GroupedAnswerer::start(&SESSION, &y, &buckets, &limits, &mut rng(2)).unwrap();
    let (reply, theirs) = answerer.handle_query(&query).unwrap();
    assert_eq!(reply.answerer_padded_sizes(), [2, 0, 0]);
    assert_eq!(theirs.peer_padded, [0, 1, 0]);
    let reply = GroupedReply::decode(&reply.encode(), &limits).unwrap();
    let ours = querier.handle_reply(&reply).unwrap();
    let counts: Vec<(u32, u32, u32)> = ours
        .groups
        .iter()
        .map(|g| (g.shared, g.own_size, g.peer_padded))
        .collect();
    assert_eq!(counts, [(0, 0, 2), (0, 1, 0), (0, 0, 0)]);
}

#[test]
fn answerer_padding_tags_are_fresh_distinct_and_sorted() {
    // The answerer pads with random tags: 5 tokens pad to 6 tags, 9 to 12, sorted and
    // distinct (the 9 repeats of one token are 9 distinct points); another session's secret
    // and padding share nothing with these.
    let limits = GroupedLimits::default();
    let buckets = SizeBuckets::default();
    let y = [
        group("a", &["1", "2", "3", "4", "5"]),
        group("b", &["1"; 9]),
    ];
    let (_, query) = GroupedQuerier::start(&SESSION, &y, &buckets, &limits, &mut rng(1)).unwrap();
    let tags = |seed: u64| {
        let answerer =
            GroupedAnswerer::start(&SESSION, &y, &buckets, &limits, &mut rng(seed)).unwrap();
        let (reply, _) = answerer.handle_query(&query).unwrap();
        split_reply(&reply.encode())
            .into_iter()
            .map(|(_, tags)| tags)
            .collect::<Vec<_>>()
    };
    let first = tags(5);
    assert_eq!(first.iter().map(Vec::len).collect::<Vec<_>>(), [6, 12]);
    for group in &first {
        assert!(group.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    }
    assert_eq!(first, tags(5), "deterministic for one rng");
    let other = tags(6);
    for (a, b) in first.iter().zip(&other) {
        // Another secret and other padding: nothing in common.
        assert!(a.iter().all(|t| !b.contains(t)));
    }
}

#[test]
fn fresh_scalars_per_session() {
    // Two sessions over the same tokens send unrelated points.
    let limits = GroupedLimits::default();
    let x = [group("a", &["t1"])];
    let (_, q1) =
        GroupedQuerier::start(&SESSION, &x, &SizeBuckets::exact(), &limits, &mut rng(1)).unwrap();
    let (_, q2) =
        GroupedQuerier::start(&SESSION, &x, &SizeBuckets::exact(), &limits, &mut rng(2)).unwrap();
    assert_ne!(q1.encode(), q2.encode());
}

/// Vectors computed independently with libsodium by `scripts/grouped_psi_vectors.py`.
#[test]
fn libsodium_grouped_vectors() {
    let unhex = |s: &str| -> Vec<u8> {
        if s == "-" {
            return Vec::new();
        }
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let vectors = include_str!("data/grouped_vectors.txt");
    let mut checked = 0;
    for line in vectors.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f[0] == "tag" {
            let point = CompressedRistretto(unhex(f[1]).try_into().unwrap());
            assert_eq!(point_tag(&point).to_vec(), unhex(f[2]), "{line}");
            checked += 1;
            continue;
        }
        assert_eq!(f[0], "grouped", "{line}");
        let session: [u8; 16] = unhex(f[1]).try_into().unwrap();
        let occurrence: u64 = f[3].parse().unwrap();
        let point = grouped_hash_to_group(&session, &unhex(f[2]), occurrence, &unhex(f[4]));
        assert_eq!(point.compress().to_bytes().to_vec(), unhex(f[5]), "{line}");
        checked += 1;
    }
    assert!(checked >= 11, "{checked}");
}

// ---- hostile bytes ----

type Point = [u8; 32];
type Tag = [u8; 8];

/// An honest query and reply for three groups (sizes 4, 6 and 1 with the default buckets).
fn honest() -> (Vec<TokenGroup>, Vec<u8>, Vec<u8>) {
    let groups = vec![
        group("g0", &["ab", "bc", "cd", "de"]),
        group("g1", &["a", "b", "c", "d", "e"]),
        group("g2", &["x"]),
    ];
    let limits = GroupedLimits::default();
    let (_, query) = GroupedQuerier::start(
        &SESSION,
        &groups,
        &SizeBuckets::default(),
        &limits,
        &mut rng(3),
    )
    .unwrap();
    let answerer = GroupedAnswerer::start(
        &SESSION,
        &groups,
        &SizeBuckets::default(),
        &limits,
        &mut rng(4),
    )
    .unwrap();
    let (reply, _) = answerer.handle_query(&query).unwrap();
    (groups, query.encode(), reply.encode())
}

fn points_of(bytes: &[u8]) -> Vec<Point> {
    bytes
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

/// A query's groups as raw points.
fn split_query(bytes: &[u8]) -> Vec<Vec<Point>> {
    let g = u32_at(bytes, 2);
    let mut at = 6 + 4 * g;
    (0..g)
        .map(|i| {
            let n = u32_at(bytes, 6 + 4 * i);
            let group = points_of(&bytes[at..at + 32 * n]);
            at += 32 * n;
            group
        })
        .collect()
}

fn encode_query(groups: &[Vec<Point>]) -> Vec<u8> {
    let mut out = vec![1, 5];
    out.extend((groups.len() as u32).to_le_bytes());
    for g in groups {
        out.extend((g.len() as u32).to_le_bytes());
    }
    for g in groups {
        out.extend(g.iter().flatten());
    }
    out
}

/// A reply's groups as raw (doubled points, answerer's tags).
fn split_reply(bytes: &[u8]) -> Vec<(Vec<Point>, Vec<Tag>)> {
    let g = u32_at(bytes, 2);
    let mut at = 6 + 8 * g;
    (0..g)
        .map(|i| {
            let n = u32_at(bytes, 6 + 8 * i);
            let m = u32_at(bytes, 10 + 8 * i);
            let doubled = points_of(&bytes[at..at + 32 * n]);
            at += 32 * n;
            let answerer = bytes[at..at + 8 * m]
                .chunks_exact(8)
                .map(|c| c.try_into().unwrap())
                .collect();
            at += 8 * m;
            (doubled, answerer)
        })
        .collect()
}

fn encode_reply(groups: &[(Vec<Point>, Vec<Tag>)]) -> Vec<u8> {
    let mut out = vec![1, 6];
    out.extend((groups.len() as u32).to_le_bytes());
    for (n, m) in groups {
        out.extend((n.len() as u32).to_le_bytes());
        out.extend((m.len() as u32).to_le_bytes());
    }
    for (n, m) in groups {
        out.extend(n.iter().flatten());
        out.extend(m.iter().flatten());
    }
    out
}

/// Runs the answerer on query bytes.
fn answer(groups: &[TokenGroup], query: &[u8]) -> Result<(), PsiError> {
    let limits = GroupedLimits::default();
    let query = GroupedQuery::decode(query, &limits)?;
    let answerer = GroupedAnswerer::start(
        &SESSION,
        groups,
        &SizeBuckets::default(),
        &limits,
        &mut rng(4),
    )?;
    answerer.handle_query(&query).map(|_| ())
}

/// Runs the querier (seeded as in [`honest`]) on reply bytes.
fn query_with(groups: &[TokenGroup], reply: &[u8]) -> Result<(), PsiError> {
    let limits = GroupedLimits::default();
    let reply = GroupedReply::decode(reply, &limits)?;
    let (querier, _) = GroupedQuerier::start(
        &SESSION,
        groups,
        &SizeBuckets::default(),
        &limits,
        &mut rng(3),
    )?;
    querier.handle_reply(&reply).map(|_| ())
}

/// A 32-byte string that is not a canonical ristretto255 encoding (its top bit is set).
const INVALID: Point = [0xff; 32];

#[test]
fn honest_bytes_pass() {
    let (groups, query, reply) = honest();
    assert_eq!(answer(&groups, &query), Ok(()));
    assert_eq!(query_with(&groups, &reply), Ok(()));
    assert_eq!(
        split_query(&query).iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 6, 1]
    );
    assert_eq!(encode_query(&split_query(&query)), query);
    assert_eq!(encode_reply(&split_reply(&reply)), reply);
}

#[test]
fn query_wrong_group_count() {
    let (groups, query, _) = honest();
    let mut parts = split_query(&query);
    parts.pop();
    assert_eq!(
        answer(&groups, &encode_query(&parts)),
        Err(PsiError::GroupCountMismatch {
            message: "grouped query",
            expected: 3,
            actual: 2
        })
    );
}

#[test]
fn reply_wrong_group_count() {
    let (groups, _, reply) = honest();
    let mut parts = split_reply(&reply);
    parts.push(parts[2].clone());
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::GroupCountMismatch {
            message: "grouped reply",
            expected: 3,
            actual: 4
        })
    );
}

#[test]
fn too_many_groups() {
    let (_, query, reply) = honest();
    let limits = GroupedLimits {
        max_groups: 2,
        max_group_size: 64,
    };
    let expected = |message| PsiError::TooManyElements {
        message,
        what: "groups",
        count: 3,
        limit: 2,
    };
    assert_eq!(
        GroupedQuery::decode(&query, &limits),
        Err(expected("grouped query"))
    );
    assert_eq!(
        GroupedReply::decode(&reply, &limits),
        Err(expected("grouped reply"))
    );
}

#[test]
fn oversize_group() {
    let (_, query, reply) = honest();
    let limits = GroupedLimits {
        max_groups: 8,
        max_group_size: 5,
    };
    let expected = |message| PsiError::GroupTooLarge {
        message,
        group: 1,
        size: 6,
        limit: 5,
    };
    assert_eq!(
        GroupedQuery::decode(&query, &limits),
        Err(expected("grouped query"))
    );
    assert_eq!(
        GroupedReply::decode(&reply, &limits),
        Err(expected("grouped reply"))
    );
    // A size announced far beyond the bytes present is refused before any allocation.
    let mut huge = query.clone();
    huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        GroupedQuery::decode(&huge, &GroupedLimits::default()),
        Err(PsiError::GroupTooLarge {
            message: "grouped query",
            group: 1,
            size: u64::from(u32::MAX),
            limit: 4096
        })
    );
}

#[test]
fn non_bucket_size() {
    let (groups, query, reply) = honest();
    let mut parts = split_query(&query);
    parts[1].pop(); // 5 points: not a bucket top
    assert_eq!(
        answer(&groups, &encode_query(&parts)),
        Err(PsiError::GroupSizeNotBucket {
            message: "grouped query",
            group: 1,
            size: 5
        })
    );
    let mut parts = split_reply(&reply);
    parts[1].1.pop();
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::GroupSizeNotBucket {
            message: "grouped reply",
            group: 1,
            size: 5
        })
    );
}

#[test]
fn reply_group_does_not_answer_every_point() {
    let (groups, _, reply) = honest();
    let mut parts = split_reply(&reply);
    parts[0].0.pop();
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::GroupSizeMismatch {
            message: "grouped reply",
            group: 0,
            expected: 4,
            actual: 3
        })
    );
}

#[test]
fn identity_point() {
    let (groups, query, reply) = honest();
    let mut parts = split_query(&query);
    parts[1][3] = [0; 32];
    assert_eq!(
        answer(&groups, &encode_query(&parts)),
        Err(PsiError::IdentityGroupPoint {
            message: "grouped query",
            group: 1,
            index: 3
        })
    );
    let mut parts = split_reply(&reply);
    parts[1].0[2] = [0; 32];
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::IdentityGroupPoint {
            message: "grouped reply",
            group: 1,
            index: 2
        })
    );
    // A tag is a hash, not a point: eight zero bytes are a tag like any other.
    let mut parts = split_reply(&reply);
    parts[1].1[2] = [0; 8];
    assert_eq!(query_with(&groups, &encode_reply(&parts)), Ok(()));
}

#[test]
fn invalid_point_encoding() {
    let (groups, query, reply) = honest();
    let mut parts = split_query(&query);
    parts[2][0] = INVALID;
    assert_eq!(
        answer(&groups, &encode_query(&parts)),
        Err(PsiError::InvalidGroupPoint {
            message: "grouped query",
            group: 2,
            index: 0
        })
    );
    let mut parts = split_reply(&reply);
    parts[0].0[1] = INVALID;
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::InvalidGroupPoint {
            message: "grouped reply",
            group: 0,
            index: 1
        })
    );
}

#[test]
fn duplicate_point_within_a_group() {
    let (groups, query, reply) = honest();
    let mut parts = split_query(&query);
    parts[1][4] = parts[1][1];
    assert_eq!(
        answer(&groups, &encode_query(&parts)),
        Err(PsiError::DuplicateGroupPoint {
            message: "grouped query",
            group: 1,
            index: 4,
            first: 1
        })
    );
    let mut parts = split_reply(&reply);
    parts[1].1[5] = parts[1].1[0];
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::DuplicateGroupPoint {
            message: "grouped reply",
            group: 1,
            index: 6 + 5,
            first: 6
        })
    );
    let mut parts = split_reply(&reply);
    parts[0].0[3] = parts[0].0[0];
    assert_eq!(
        query_with(&groups, &encode_reply(&parts)),
        Err(PsiError::DuplicateGroupPoint {
            message: "grouped reply",
            group: 0,
            index: 3,
            first: 0
        })
    );
    // The same point in two groups is no duplicate.
    let mut parts = split_query(&query);
    parts[1][0] = parts[0][0];
    assert!(GroupedQuery::decode(&encode_query(&parts), &GroupedLimits::default()).is_ok());
}

#[test]
fn trailing_and_truncated_bytes() {
    let (_, query, reply) = honest();
    let limits = GroupedLimits::default();
    let mut long = query.clone();
    long.push(0);
    assert_eq!(
        GroupedQuery::decode(&long, &limits),
        Err(PsiError::TrailingBytes {
            message: "grouped query",
            extra: 1
        })
    );
    let mut long = reply.clone();
    long.extend([0; 3]);
    assert_eq!(
        GroupedReply::decode(&long, &limits),
        Err(PsiError::TrailingBytes {
            message: "grouped reply",
            extra: 3
        })
    );
    assert_eq!(
        GroupedQuery::decode(&query[..query.len() - 1], &limits),
        Err(PsiError::Truncated {
            message: "grouped query",
            expected: query.len(),
            actual: query.len() - 1
        })
    );
    assert!(matches!(
        GroupedReply::decode(&reply[..7], &limits),
        Err(PsiError::Truncated { .. })
    ));
    // A query is not a reply.
    assert_eq!(
        GroupedReply::decode(&query, &limits),
        Err(PsiError::WrongMessageKind {
            message: "grouped reply",
            expected: 6,
            found: 5
        })
    );
}

#[test]
fn own_limits() {
    let limits = GroupedLimits {
        max_groups: 1,
        max_group_size: 4,
    };
    let buckets = SizeBuckets::default();
    let two = [group("a", &[]), group("b", &[])];
    assert_eq!(
        GroupedQuerier::start(&SESSION, &two, &buckets, &limits, &mut rng(1)).map(|_| ()),
        Err(PsiError::TooManyOwnGroups { count: 2, limit: 1 })
    );
    let five = [group("a", &["1", "2", "3", "4", "5"])];
    assert_eq!(
        GroupedAnswerer::start(&SESSION, &five, &buckets, &limits, &mut rng(1)).map(|_| ()),
        Err(PsiError::OwnGroupTooLarge {
            group: 0,
            count: 5,
            limit: 4
        })
    );
}
