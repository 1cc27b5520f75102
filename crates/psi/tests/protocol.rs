//! Both parties of every protocol in one process, against a plain set intersection, and every
//! decoder against hostile bytes.
// Test code throughout (helpers and proptest bodies included, which clippy.toml's
// allow-unwrap-in-tests does not see as tests): a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};

use blindlink_psi::{
    BlindedSet, CardinalityInitiator, CardinalityReply, CardinalityResponder, CascadeLink,
    CascadeOutcome, CascadePlan, CascadeStep, FalsePositiveRate, MatchKeyName, MutualInitiator,
    MutualOutcome, MutualReply, MutualResponder, PsiError, ReblindedSet, ResponderSet, SetEncoding,
    WireLimits, hash_to_group, mutual_in_memory,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key(name: &str) -> MatchKeyName {
    MatchKeyName::new(name).unwrap()
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn mutual(a: &[Vec<u8>], b: &[Vec<u8>], seed: u64) -> (MutualOutcome, MutualOutcome) {
    mutual_in_memory(&key("k"), a, b, &mut rng(seed), &mut rng(seed + 1)).unwrap()
}

fn cardinality(a: &[Vec<u8>], b: &[Vec<u8>], encoding: SetEncoding, seed: u64) -> usize {
    let (initiator, request) = CardinalityInitiator::start(&key("k"), a, &mut rng(seed)).unwrap();
    let responder = CardinalityResponder::new(&key("k"), b, encoding).unwrap();
    let reply = responder
        .handle_blinded_set(&request, &mut rng(seed + 1))
        .unwrap();
    initiator.handle_reply(&reply).unwrap().intersection_size
}

fn plain_matches(ours: &[Vec<u8>], theirs: &[Vec<u8>]) -> Vec<usize> {
    let theirs: BTreeSet<&Vec<u8>> = theirs.iter().collect();
    (0..ours.len())
        .filter(|&i| theirs.contains(&ours[i]))
        .collect()
}

/// Small byte strings from a small alphabet, so overlaps and duplicates are frequent.
fn set() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(0u8..4, 0..3), 0..24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mutual_equals_plain_intersection(a in set(), b in set(), seed in any::<u64>()) {
        let (ours, theirs) = mutual(&a, &b, seed);
        let indices = |o: &MutualOutcome| o.matches.iter().map(|m| m.index).collect::<Vec<_>>();
        prop_assert_eq!(indices(&ours), plain_matches(&a, &b));
        prop_assert_eq!(indices(&theirs), plain_matches(&b, &a));
        // One link id per distinct shared value, the same on both sides, distinct across values.
        let mut link_of_value = HashMap::new();
        for (elements, outcome) in [(&a, &ours), (&b, &theirs)] {
            for m in &outcome.matches {
                let previous = link_of_value.insert(elements[m.index].clone(), m.link_id);
                prop_assert!(previous.is_none_or(|p| p == m.link_id));
            }
        }
        let distinct: BTreeSet<_> = link_of_value.values().collect();
        prop_assert_eq!(distinct.len(), link_of_value.len());
        prop_assert_eq!(ours.peer_set_size, b.iter().collect::<BTreeSet<_>>().len());
        prop_assert_eq!(theirs.peer_set_size, a.iter().collect::<BTreeSet<_>>().len());
    }

    #[test]
    fn cardinality_equals_plain_intersection(a in set(), b in set(), seed in any::<u64>()) {
        let a_set: BTreeSet<_> = a.iter().collect();
        let b_set: BTreeSet<_> = b.iter().collect();
        let expected = a_set.intersection(&b_set).count();
        prop_assert_eq!(cardinality(&a, &b, SetEncoding::Raw, seed), expected);
        let bloom = SetEncoding::Bloom(FalsePositiveRate::new(1e-9).unwrap());
        prop_assert_eq!(cardinality(&a, &b, bloom, seed), expected);
    }
}

#[test]
fn empty_sets() {
    let some = vec![b"x".to_vec()];
    for (a, b) in [
        (vec![], vec![]),
        (some.clone(), vec![]),
        (vec![], some.clone()),
    ] {
        let (ours, theirs) = mutual(&a, &b, 3);
        assert!(ours.matches.is_empty() && theirs.matches.is_empty());
        assert_eq!(cardinality(&a, &b, SetEncoding::Raw, 3), 0);
        let bloom = SetEncoding::Bloom(FalsePositiveRate::new(1e-6).unwrap());
        assert_eq!(cardinality(&a, &b, bloom, 3), 0);
    }
}

#[test]
fn a_different_domain_tag_gives_no_matches() {
    let elements: Vec<Vec<u8>> = (0..50u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let (initiator, request) =
        MutualInitiator::start(&key("my_number"), &elements, &mut rng(1)).unwrap();
    let responder = MutualResponder::start(&key("kana+dob"), &elements, &mut rng(2)).unwrap();
    let (responder, reply) = responder.handle_blinded_set(&request).unwrap();
    let (ours, reblinded) = initiator.handle_reply(&reply).unwrap();
    let theirs = responder.handle_reblinded_set(&reblinded).unwrap();
    assert!(ours.matches.is_empty() && theirs.matches.is_empty());
    assert_ne!(
        hash_to_group(&key("my_number"), b"1"),
        hash_to_group(&key("my_number2"), b"1")
    );
}

#[test]
fn hash_to_group_golden_vectors() {
    // Pinned so that two builds (or a dependency update) never disagree on the group element;
    // the same values come out of libsodium (scripts/psi_vectors.py, tests/data/vectors.txt).
    let cases: [(&str, &[u8]); 3] = [
        ("my_number", b"123456789018"),
        ("my_number", b""),
        ("kana+dob+sex", "ヤマダタロウ|19800101|1".as_bytes()),
    ];
    let got: Vec<String> = cases
        .iter()
        .map(|(name, element)| {
            hex::encode(hash_to_group(&key(name), element).compress().as_bytes())
        })
        .collect();
    assert_eq!(
        got,
        [
            "0065cedba5bc41f1655dfb7ddc25ccca246ecaa07824cda5a4bc7e17ff155b43",
            "fa1e32c28ab110669c96ad2f9bbf028099c210e6bf4842aa04d260498c857229",
            "a4b1b649d2dd3a8c821ab7b1b7bcc4ee514e7c5c3bf3310e60c55adf32f6ec52",
        ]
    );
}

#[test]
fn sessions_are_deterministic_for_a_seed() {
    let a: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i]).collect();
    let b: Vec<Vec<u8>> = (10..30u8).map(|i| vec![i]).collect();
    assert_eq!(mutual(&a, &b, 9), mutual(&a, &b, 9));
    let (_, first) = MutualInitiator::start(&key("k"), &a, &mut rng(9)).unwrap();
    let (_, again) = MutualInitiator::start(&key("k"), &a, &mut rng(9)).unwrap();
    let (_, other) = MutualInitiator::start(&key("k"), &a, &mut rng(10)).unwrap();
    assert_eq!(first.encode(), again.encode());
    assert_ne!(first.encode(), other.encode());
    // Fresh scalars per session: the link ids of two sessions are unrelated.
    let (one, _) = mutual(&a, &b, 9);
    let (two, _) = mutual(&a, &b, 11);
    assert_ne!(one.matches[0].link_id, two.matches[0].link_id);
}

#[test]
fn duplicates_are_sent_once() {
    let a = vec![b"x".to_vec(), b"y".to_vec(), b"x".to_vec()];
    let (_, request) = MutualInitiator::start(&key("k"), &a, &mut rng(1)).unwrap();
    assert_eq!(request.len(), 2);
    let (ours, _) = mutual(&a, &[b"x".to_vec()], 1);
    let indices: Vec<usize> = ours.matches.iter().map(|m| m.index).collect();
    assert_eq!(indices, [0, 2]);
    assert_eq!(ours.matches[0].link_id, ours.matches[1].link_id);
}

#[test]
fn cardinality_reply_reveals_no_order() {
    // The same responder (same seed) answers the initiator's points in two orders with
    // byte-identical replies, so the reply cannot say which point matched.
    let a: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i]).collect();
    let b: Vec<Vec<u8>> = (20..60u8).map(|i| vec![i]).collect();
    let (_, request) = CardinalityInitiator::start(&key("k"), &a, &mut rng(1)).unwrap();
    let mut reversed = request.points().to_vec();
    reversed.reverse();
    let reversed_bytes = encode_points(1, &reversed);
    let reversed = BlindedSet::decode(&reversed_bytes, &WireLimits::default()).unwrap();
    let answer = |request: &BlindedSet| {
        CardinalityResponder::new(&key("k"), &b, SetEncoding::Raw)
            .unwrap()
            .handle_blinded_set(request, &mut rng(2))
            .unwrap()
            .encode()
    };
    assert_eq!(answer(&request), answer(&reversed));
    let reply = CardinalityReply::decode(&answer(&request), &WireLimits::default()).unwrap();
    let doubled = reply.initiator_doubled();
    assert!(
        doubled
            .windows(2)
            .all(|w| w[0].as_bytes() < w[1].as_bytes())
    );
}

#[test]
fn bloom_reply_is_smaller_and_reports_its_rate() {
    let a: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let b: Vec<Vec<u8>> = (250..750u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let (initiator, request) = CardinalityInitiator::start(&key("k"), &a, &mut rng(1)).unwrap();
    let rate = FalsePositiveRate::new(1e-6).unwrap();
    let reply = CardinalityResponder::new(&key("k"), &b, SetEncoding::Bloom(rate))
        .unwrap()
        .handle_blinded_set(&request, &mut rng(2))
        .unwrap();
    let ResponderSet::Bloom(bloom) = reply.responder_set() else {
        panic!("expected a bloom filter")
    };
    // ln(500 / 1e-6) / ln²2 ≈ 41.7 bits per element instead of 256.
    assert_eq!(bloom.filter_bytes().len(), 45 + 2606);
    let outcome = initiator.handle_reply(&reply).unwrap();
    assert_eq!(outcome.intersection_size, 250);
    assert_eq!(outcome.peer_set_size, None);
    assert!(outcome.expected_false_positives < 1e-5);
    let decoded = CardinalityReply::decode(&reply.encode(), &WireLimits::default()).unwrap();
    assert_eq!(decoded, reply);
}

#[test]
fn debug_output_shows_no_secret() {
    let (state, _) = MutualInitiator::start(&key("k"), &[b"x"], &mut rng(1)).unwrap();
    let debug = format!("{state:?}");
    assert!(debug.contains("SessionSecret(..)"), "{debug}");
    // Raw elements (personal data) never appear in Debug output either.
    let responder =
        CardinalityResponder::new(&key("k"), &["yamada-taro"], SetEncoding::Raw).unwrap();
    let debug = format!("{responder:?}");
    assert!(
        !debug.contains("yamada") && debug.contains("elements: 1"),
        "{debug}"
    );
    let plan = CascadePlan::new(vec![key("k")], vec![vec![Some(b"yamada-taro".to_vec())]]).unwrap();
    let CascadeStep::Round(round) = plan.next_round() else {
        panic!("expected a round")
    };
    let debug = format!("{round:?}");
    assert!(
        !debug.contains("yamada") && debug.contains("elements: 1"),
        "{debug}"
    );
}

// ---- hostile bytes ----------------------------------------------------------------------

fn encode_points(kind: u8, points: &[curve25519_dalek::ristretto::CompressedRistretto]) -> Vec<u8> {
    let mut bytes = vec![1, kind];
    bytes.extend_from_slice(&(points.len() as u32).to_le_bytes());
    for p in points {
        bytes.extend_from_slice(p.as_bytes());
    }
    bytes
}

fn limits() -> WireLimits {
    WireLimits {
        max_elements: 4,
        max_bloom_bytes: 100,
    }
}

fn check(bytes: &[u8], expected: Result<(), &str>) {
    let got = match bytes.get(1) {
        Some(2) => MutualReply::decode(bytes, &limits()).map(|_| ()),
        Some(3) => ReblindedSet::decode(bytes, &limits()).map(|_| ()),
        Some(4) => CardinalityReply::decode(bytes, &limits()).map(|_| ()),
        _ => BlindedSet::decode(bytes, &limits()).map(|_| ()),
    };
    assert_eq!(
        got.map_err(|e| e.to_string()),
        expected.map_err(str::to_owned),
        "{bytes:?}"
    );
}

fn with(prefix: &[u8], points: &[[u8; 32]], suffix: &[u8]) -> Vec<u8> {
    let mut bytes = prefix.to_vec();
    points.iter().for_each(|p| bytes.extend_from_slice(p));
    bytes.extend_from_slice(suffix);
    bytes
}

const P: [u8; 32] = [7; 32];
const ZERO: [u8; 32] = [0; 32];

#[test]
fn decoders_reject_hostile_bytes() {
    check(
        &[],
        Err("blinded set is truncated: expected 1 bytes, got 0"),
    );
    check(
        &[1],
        Err("blinded set is truncated: expected 2 bytes, got 1"),
    );
    check(
        &[2, 1, 0, 0, 0, 0],
        Err("blinded set has wire version 2, expected 1"),
    );
    check(
        &[1, 9, 0, 0, 0, 0],
        Err("expected blinded set (kind 1), got message kind 9"),
    );
    check(
        &[1, 1, 0, 0],
        Err("blinded set is truncated: expected 6 bytes, got 4"),
    );
    check(&[1, 1, 0, 0, 0, 0], Ok(()));
    check(
        &[1, 1, 0, 0, 0, 0, 0],
        Err("blinded set has 1 trailing bytes"),
    );
    check(
        &[1, 1, 5, 0, 0, 0],
        Err("blinded set announces 5 elements, more than the limit of 4"),
    );
    check(
        &[1, 1, 255, 255, 255, 255],
        Err("blinded set announces 4294967295 elements, more than the limit of 4"),
    );
    check(
        &with(&[1, 1, 2, 0, 0, 0], &[P], &[]),
        Err("blinded set is truncated: expected 70 bytes, got 38"),
    );
    check(&with(&[1, 1, 2, 0, 0, 0], &[P, P], &[]), Ok(()));
    check(
        &with(&[1, 1, 2, 0, 0, 0], &[P, ZERO], &[]),
        Err("blinded set has the identity point at index 1"),
    );
    check(&with(&[1, 2, 1, 0, 0, 0, 1, 0, 0, 0], &[P, P], &[]), Ok(()));
    check(
        &with(&[1, 2, 1, 0, 0, 0, 1, 0, 0, 0], &[P, ZERO], &[]),
        Err("mutual reply has the identity point at index 1"),
    );
    check(
        &with(&[1, 2, 1, 0, 0, 0, 9, 0, 0, 0], &[P, P], &[]),
        Err("mutual reply announces 9 elements, more than the limit of 4"),
    );
    check(
        &with(&[1, 2, 1, 0, 0, 0, 1, 0, 0, 0], &[P, P], &[0]),
        Err("mutual reply has 1 trailing bytes"),
    );
    check(
        &with(&[1, 3, 1, 0, 0, 0], &[ZERO], &[]),
        Err("reblinded set has the identity point at index 0"),
    );
    check(
        &with(&[1, 4, 1, 0, 0, 0], &[P], &[0, 1, 0, 0, 0]),
        Err("cardinality reply is truncated: expected 75 bytes, got 43"),
    );
    let mut raw = with(&[1, 4, 1, 0, 0, 0], &[P], &[0, 1, 0, 0, 0]);
    raw.extend_from_slice(&P);
    check(&raw, Ok(()));
    check(
        &with(&[1, 4, 1, 0, 0, 0], &[P], &[2]),
        Err("cardinality reply has unknown set representation 2"),
    );
    check(
        &with(&[1, 4, 0, 0, 0, 0], &[], &[1, 101, 0, 0, 0]),
        Err("cardinality reply announces 101 bytes, more than the limit of 100"),
    );
    check(
        &with(&[1, 4, 0, 0, 0, 0], &[], &[1, 3, 0, 0, 0, 1, 2, 3]),
        Err("bloom filter is invalid: shorter than its 45-byte header"),
    );
}

#[test]
fn sessions_reject_invalid_points_and_wrong_counts() {
    let elements: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i]).collect();
    // 0xff..ff is not a canonical field element, so not a point.
    let bad = [0xffu8; 32];
    let decode = |bytes: &[u8]| BlindedSet::decode(bytes, &WireLimits::default()).unwrap();

    let (_, request) = MutualInitiator::start(&key("k"), &elements, &mut rng(1)).unwrap();
    let mut points: Vec<[u8; 32]> = request.points().iter().map(|p| p.to_bytes()).collect();
    points[3] = bad;
    let hostile = decode(&with(&[1, 1, 5, 0, 0, 0], &points, &[]));
    let responder = MutualResponder::start(&key("k"), &elements, &mut rng(2)).unwrap();
    assert_eq!(
        responder.handle_blinded_set(&hostile).unwrap_err(),
        PsiError::InvalidPoint {
            message: "blinded set",
            index: 3
        }
    );

    // The reply's second list is numbered after the first.
    let (initiator, request) = MutualInitiator::start(&key("k"), &elements, &mut rng(1)).unwrap();
    let responder = MutualResponder::start(&key("k"), &elements, &mut rng(2)).unwrap();
    let (_, reply) = responder.handle_blinded_set(&request).unwrap();
    let mut bytes = reply.encode();
    let at = 10 + 32 * 6;
    bytes[at..at + 32].copy_from_slice(&bad);
    let hostile = MutualReply::decode(&bytes, &WireLimits::default()).unwrap();
    assert_eq!(
        initiator.handle_reply(&hostile).unwrap_err(),
        PsiError::InvalidPoint {
            message: "mutual reply",
            index: 6
        }
    );

    // Doubly-blinded points are only compared, but a bad one is still refused.
    let (initiator, request) = MutualInitiator::start(&key("k"), &elements, &mut rng(1)).unwrap();
    let responder = MutualResponder::start(&key("k"), &elements, &mut rng(2)).unwrap();
    let (_, reply) = responder.handle_blinded_set(&request).unwrap();
    let mut bytes = reply.encode();
    bytes[10..42].copy_from_slice(&bad);
    let hostile = MutualReply::decode(&bytes, &WireLimits::default()).unwrap();
    assert_eq!(
        initiator.handle_reply(&hostile).unwrap_err(),
        PsiError::InvalidPoint {
            message: "mutual reply",
            index: 0
        }
    );

    // A reply that answers fewer points than were sent.
    let (initiator, _) = MutualInitiator::start(&key("k"), &elements, &mut rng(1)).unwrap();
    let short = MutualReply::decode(
        &with(&[1, 2, 1, 0, 0, 0, 0, 0, 0, 0], &[P], &[]),
        &WireLimits::default(),
    )
    .unwrap();
    assert_eq!(
        initiator.handle_reply(&short).unwrap_err(),
        PsiError::CountMismatch {
            message: "mutual reply",
            expected: 5,
            actual: 1
        }
    );

    // The responder's last step.
    let (initiator, request) = MutualInitiator::start(&key("k"), &elements, &mut rng(1)).unwrap();
    let responder = MutualResponder::start(&key("k"), &elements, &mut rng(2)).unwrap();
    let (responder, reply) = responder.handle_blinded_set(&request).unwrap();
    let (_, reblinded) = initiator.handle_reply(&reply).unwrap();
    let mut bytes = reblinded.encode();
    bytes[6 + 32 * 4..6 + 32 * 5].copy_from_slice(&bad);
    let hostile = ReblindedSet::decode(&bytes, &WireLimits::default()).unwrap();
    assert_eq!(
        responder.handle_reblinded_set(&hostile).unwrap_err(),
        PsiError::InvalidPoint {
            message: "reblinded set",
            index: 4
        }
    );
}

#[test]
fn messages_round_trip() {
    let a: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i]).collect();
    let b: Vec<Vec<u8>> = (3..9u8).map(|i| vec![i]).collect();
    let limits = WireLimits::default();
    let (initiator, request) = MutualInitiator::start(&key("k"), &a, &mut rng(1)).unwrap();
    assert_eq!(
        BlindedSet::decode(&request.encode(), &limits).unwrap(),
        request
    );
    let responder = MutualResponder::start(&key("k"), &b, &mut rng(2)).unwrap();
    let (_, reply) = responder.handle_blinded_set(&request).unwrap();
    assert_eq!(
        MutualReply::decode(&reply.encode(), &limits).unwrap(),
        reply
    );
    let (_, reblinded) = initiator.handle_reply(&reply).unwrap();
    assert_eq!(
        ReblindedSet::decode(&reblinded.encode(), &limits).unwrap(),
        reblinded
    );
    let reply = CardinalityResponder::new(&key("k"), &b, SetEncoding::Raw)
        .unwrap()
        .handle_blinded_set(&request, &mut rng(3))
        .unwrap();
    assert_eq!(
        CardinalityReply::decode(&reply.encode(), &limits).unwrap(),
        reply
    );
    // Every strict prefix of a valid message is refused as truncated.
    let bytes = reply.encode();
    for len in 0..bytes.len() {
        assert!(matches!(
            CardinalityReply::decode(&bytes[..len], &limits),
            Err(PsiError::Truncated { .. })
        ));
    }
}

// ---- cascade ----------------------------------------------------------------------------

fn run_cascade(
    keys: &[&str],
    a: Vec<Vec<Option<&str>>>,
    b: Vec<Vec<Option<&str>>>,
) -> (CascadeOutcome, CascadeOutcome) {
    let keys: Vec<MatchKeyName> = keys.iter().map(|k| key(k)).collect();
    let owned = |records: Vec<Vec<Option<&str>>>| {
        records
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.map(|s| s.as_bytes().to_vec()))
                    .collect()
            })
            .collect()
    };
    let mut plan_a = CascadePlan::new(keys.clone(), owned(a)).unwrap();
    let mut plan_b = CascadePlan::new(keys, owned(b)).unwrap();
    let mut seed = 100;
    loop {
        match (plan_a.next_round(), plan_b.next_round()) {
            (CascadeStep::Round(ra), CascadeStep::Round(rb)) => {
                assert_eq!(ra.key(), rb.key());
                let (oa, ob) = mutual_in_memory(
                    ra.key(),
                    &ra.elements(),
                    &rb.elements(),
                    &mut rng(seed),
                    &mut rng(seed + 1),
                )
                .unwrap();
                seed += 2;
                plan_a = ra.finish(&oa).unwrap();
                plan_b = rb.finish(&ob).unwrap();
            }
            (CascadeStep::Done(oa), CascadeStep::Done(ob)) => return (oa, ob),
            _ => panic!("plans disagree on the number of rounds"),
        }
    }
}

fn links(outcome: &CascadeOutcome) -> Vec<(usize, usize)> {
    outcome
        .links
        .iter()
        .map(|l: &CascadeLink| (l.record, l.round))
        .collect()
}

#[test]
fn cascade_links_by_priority_and_reports_ambiguity() {
    let (a, b) = run_cascade(
        &["my_number", "kana+dob"],
        vec![
            vec![Some("111"), Some("yamada|1980")], // 0: by number
            vec![None, Some("sato|1975")],          // 1: no number, by name
            vec![Some("333"), Some("ito|1990")],    // 2: number shared by record 3: ambiguous
            vec![Some("333"), Some("kato|1991")],   // 3: then linked by name
            vec![Some("555"), Some("abe|2000")],    // 4: no partner
        ],
        vec![
            vec![Some("333"), Some("kato|1991")],   // 0
            vec![Some("111"), Some("other|1111")],  // 1: number wins over a different name
            vec![Some("999"), Some("sato|1975")],   // 2
            vec![Some("777"), Some("yamada|1980")], // 3: name of a record linked in round 0
        ],
    );
    assert_eq!(links(&a), [(0, 0), (1, 1), (3, 1)]);
    assert_eq!(links(&b), [(0, 1), (1, 0), (2, 1)]);
    assert_eq!(a.ambiguous.len(), 1);
    assert_eq!(
        (a.ambiguous[0].round, a.ambiguous[0].records.clone()),
        (0, vec![2, 3])
    );
    assert!(b.ambiguous.is_empty());
    let link =
        |o: &CascadeOutcome, record| o.links.iter().find(|l| l.record == record).unwrap().link_id;
    assert_eq!(link(&a, 0), link(&b, 1));
    assert_eq!(link(&a, 1), link(&b, 2));
    assert_eq!(link(&a, 3), link(&b, 0));
}

#[test]
fn cascade_rejects_inconsistent_input() {
    let keys = vec![key("a"), key("b")];
    assert_eq!(
        CascadePlan::new(keys.clone(), vec![vec![None]])
            .unwrap_err()
            .to_string(),
        "cascade: record 0 has 1 key values, expected 2"
    );
    assert_eq!(
        CascadePlan::new(vec![], vec![]).unwrap_err().to_string(),
        "cascade: no match key"
    );
    let plan = CascadePlan::new(keys, vec![vec![Some(b"x".to_vec()), None]]).unwrap();
    let CascadeStep::Round(round) = plan.next_round() else {
        panic!("expected a round")
    };
    let (bogus, _) = mutual(&[b"q".to_vec(), b"x".to_vec()], &[b"x".to_vec()], 1);
    assert_eq!(
        round.finish(&bogus).unwrap_err().to_string(),
        "cascade: round 0 outcome names element 1, but the round has 1"
    );
}

#[test]
fn match_key_names() {
    let check = |name: &str, expected: Result<(), &str>| {
        assert_eq!(
            MatchKeyName::new(name)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            expected.map_err(str::to_owned)
        );
    };
    check("my_number", Ok(()));
    check("kana+dob+sex", Ok(()));
    check("", Err("match key name is invalid: empty"));
    check(
        "a b",
        Err("match key name is invalid: not printable ascii without spaces"),
    );
    check(
        "名前",
        Err("match key name is invalid: not printable ascii without spaces"),
    );
    check(
        &"x".repeat(65),
        Err("match key name is invalid: longer than 64 bytes"),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No byte string makes a decoder panic or allocate past its input.
    #[test]
    fn decoders_never_panic(kind in 1u8..=4, body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![1, kind];
        bytes.extend_from_slice(&body);
        let _ = BlindedSet::decode(&bytes, &limits());
        let _ = MutualReply::decode(&bytes, &limits());
        let _ = ReblindedSet::decode(&bytes, &limits());
        let _ = CardinalityReply::decode(&bytes, &limits());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A valid reply with one byte flipped is either refused with a typed error or handled;
    /// never a panic.
    #[test]
    fn corrupted_replies_never_panic(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let a: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i]).collect();
        let (initiator, request) = MutualInitiator::start(&key("k"), &a, &mut rng(1)).unwrap();
        let responder = MutualResponder::start(&key("k"), &a, &mut rng(2)).unwrap();
        let (_, reply) = responder.handle_blinded_set(&request).unwrap();
        let mut bytes = reply.encode();
        let at = position.index(bytes.len());
        bytes[at] ^= flip;
        if let Ok(reply) = MutualReply::decode(&bytes, &WireLimits::default()) {
            let _ = initiator.handle_reply(&reply);
        }
    }
}

#[test]
fn a_shared_round_links_every_holder_of_a_duplicate_value_once() {
    let keys = vec![key("my_number")];
    let a = vec![
        vec![Some(b"333".to_vec())], // 0 and 1 share a number: both get its link id
        vec![Some(b"333".to_vec())],
        vec![Some(b"111".to_vec())],
    ];
    let b = vec![vec![Some(b"333".to_vec())], vec![Some(b"111".to_vec())]];
    let plan_a = CascadePlan::new(keys.clone(), a)
        .unwrap()
        .share_duplicates_in_round(0);
    let plan_b = CascadePlan::new(keys, b).unwrap();
    let (CascadeStep::Round(ra), CascadeStep::Round(rb)) =
        (plan_a.next_round(), plan_b.next_round())
    else {
        panic!("one round expected");
    };
    // The peer still sees the shared value once.
    assert_eq!(ra.elements(), [b"333".as_slice(), b"111".as_slice()]);
    let (oa, ob) = mutual_in_memory(
        ra.key(),
        &ra.elements(),
        &rb.elements(),
        &mut rng(7),
        &mut rng(8),
    )
    .unwrap();
    let (CascadeStep::Done(a), CascadeStep::Done(b)) = (
        ra.finish(&oa).unwrap().next_round(),
        rb.finish(&ob).unwrap().next_round(),
    ) else {
        panic!("one round expected");
    };
    assert_eq!(links(&a), [(0, 0), (1, 0), (2, 0)]);
    assert!(a.ambiguous.is_empty());
    let link =
        |o: &CascadeOutcome, record| o.links.iter().find(|l| l.record == record).unwrap().link_id;
    assert_eq!(link(&a, 0), link(&a, 1));
    assert_eq!(link(&a, 0), link(&b, 0));
    assert_eq!(link(&a, 2), link(&b, 1));
}
