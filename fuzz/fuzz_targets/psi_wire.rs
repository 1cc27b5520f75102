//! Every decoder of `blindlink-psi`'s wire format on arbitrary bytes, then the session state
//! machine that consumes the decoded message.
//!
//! Properties: no decoder panics; a message that decodes re-encodes to exactly the same bytes
//! (the format is canonical) and still decodes under limits equal to its own counts; a
//! session handed a decoded message answers or fails with a `PsiError` (invalid points,
//! count mismatches), never a panic.
#![no_main]

use blindlink_psi::{
    BlindedSet, CardinalityInitiator, CardinalityReply, CardinalityResponder, FalsePositiveRate,
    MatchKeyName, MutualInitiator, MutualReply, MutualResponder, ReblindedSet, ResponderSet,
    SetEncoding, WireLimits,
};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Sessions are only started for messages this small, so one input stays cheap.
const MAX_SESSION_ELEMENTS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let limits = WireLimits::default();
    if let Ok(message) = BlindedSet::decode(data, &limits) {
        assert_eq!(message.encode(), data, "blinded set is not canonical");
        let tight = WireLimits {
            max_elements: message.len(),
            max_bloom_bytes: 0,
        };
        assert_eq!(BlindedSet::decode(data, &tight).as_ref(), Ok(&message));
        if !message.is_empty() {
            let short = WireLimits {
                max_elements: message.len() - 1,
                ..tight
            };
            assert!(
                BlindedSet::decode(data, &short).is_err(),
                "count limit not enforced"
            );
        }
        answer_blinded_set(&message);
    }
    if let Ok(message) = MutualReply::decode(data, &limits) {
        assert_eq!(message.encode(), data, "mutual reply is not canonical");
        let (doubled, blinded) = (count_at(data, 2), count_at(data, 6));
        let tight = WireLimits {
            max_elements: doubled.max(blinded),
            max_bloom_bytes: 0,
        };
        assert_eq!(MutualReply::decode(data, &tight).as_ref(), Ok(&message));
        if doubled <= MAX_SESSION_ELEMENTS {
            let (initiator, _) =
                MutualInitiator::start(&key(), &elements(doubled), &mut rng(1)).expect("small set");
            let _ = initiator.handle_reply(&message);
        }
    }
    if let Ok(message) = ReblindedSet::decode(data, &limits) {
        assert_eq!(message.encode(), data, "reblinded set is not canonical");
        let count = count_at(data, 2);
        let tight = WireLimits {
            max_elements: count,
            max_bloom_bytes: 0,
        };
        assert_eq!(ReblindedSet::decode(data, &tight).as_ref(), Ok(&message));
        if count <= MAX_SESSION_ELEMENTS {
            let own = elements(count);
            let responder = MutualResponder::start(&key(), &own, &mut rng(2)).expect("small set");
            let (_, request) =
                MutualInitiator::start(&key(), &own, &mut rng(3)).expect("small set");
            let (waiting, _) = responder
                .handle_blinded_set(&request)
                .expect("an honest blinded set is accepted");
            let _ = waiting.handle_reblinded_set(&message);
        }
    }
    if let Ok(message) = CardinalityReply::decode(data, &limits) {
        assert_eq!(message.encode(), data, "cardinality reply is not canonical");
        let doubled = message.initiator_doubled().len();
        let tight = match message.responder_set() {
            ResponderSet::Raw(points) => WireLimits {
                max_elements: doubled.max(points.len()),
                max_bloom_bytes: 0,
            },
            ResponderSet::Bloom(bloom) => WireLimits {
                max_elements: doubled,
                max_bloom_bytes: bloom.filter_bytes().len(),
            },
        };
        assert_eq!(
            CardinalityReply::decode(data, &tight).as_ref(),
            Ok(&message)
        );
        if let ResponderSet::Bloom(bloom) = message.responder_set() {
            let rate = bloom.per_test_rate();
            assert!(
                (0.0..=1.0).contains(&rate),
                "per-test rate {rate} is not a probability"
            );
        }
        if doubled <= MAX_SESSION_ELEMENTS {
            let (initiator, _) =
                CardinalityInitiator::start(&key(), &elements(doubled), &mut rng(4))
                    .expect("small set");
            if let Ok(outcome) = initiator.handle_reply(&message) {
                assert!(outcome.intersection_size <= doubled);
            }
        }
    }
});

/// The responders of both protocols answer a peer's blinded set.
fn answer_blinded_set(message: &BlindedSet) {
    if message.len() > MAX_SESSION_ELEMENTS {
        return;
    }
    let own = elements(3);
    let responder = MutualResponder::start(&key(), &own, &mut rng(5)).expect("small set");
    if let Ok((_, reply)) = responder.handle_blinded_set(message) {
        let decoded = MutualReply::decode(&reply.encode(), &WireLimits::default());
        assert_eq!(
            decoded.as_ref(),
            Ok(&reply),
            "our own mutual reply does not decode"
        );
    }
    let rate = FalsePositiveRate::new(0.01).expect("a valid rate");
    for encoding in [SetEncoding::Raw, SetEncoding::Bloom(rate)] {
        let responder = CardinalityResponder::new(&key(), &own, encoding).expect("small set");
        if let Ok(reply) = responder.handle_blinded_set(message, &mut rng(6)) {
            let decoded = CardinalityReply::decode(&reply.encode(), &WireLimits::default());
            assert_eq!(
                decoded.as_ref(),
                Ok(&reply),
                "our own cardinality reply does not decode"
            );
        }
    }
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

fn key() -> MatchKeyName {
    MatchKeyName::new("fuzz").expect("a valid key name")
}

fn elements(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("element {i}").into_bytes())
        .collect()
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}
