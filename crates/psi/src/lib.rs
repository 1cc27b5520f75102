//! ECDH private set intersection on ristretto255, as sans-IO state machines.
//!
//! Two parties each hash their elements to the group (SHA3-512 and the ristretto255 one-way
//! map, under a domain tag naming `blindlink/v1/psi` and the match key), blind them with a
//! fresh secret scalar, and exchange the blinded points; blinding commutes, so an element both
//! hold ends up as the same doubly-blinded point on both sides, while every other point looks
//! random to the party without the other secret. [`MutualInitiator`] / [`MutualResponder`] let
//! both parties learn which of their own elements matched and derive the same [`LinkId`] for
//! each; [`CardinalityInitiator`] / [`CardinalityResponder`] reveal only the count, optionally
//! with the responder's set compressed into a Bloom filter; [`CascadePlan`] runs several keys
//! in priority order and reports ambiguous keys.
//!
//! Each party's step is a type whose method consumes it and returns the next state and the
//! message to send, so steps cannot be taken out of order. Messages are plain types with an
//! explicit byte encoding ([`wire`]); decoding bounds every count, rejects trailing bytes and
//! the identity, and the sessions reject invalid point encodings with a typed [`PsiError`].
//! Nothing here opens a socket or a file: the protocol and service crates move the bytes.
//!
//! Heavy work (hashing, scalar multiplication, batch compression) runs on the current rayon
//! pool in batches; install a pool to bound the threads.
//!
//! # Security
//! Semi-honest model: a party that follows the protocol learns what [`MutualOutcome`] or
//! [`CardinalityOutcome`] say and the other set's size, nothing else (under DDH in
//! ristretto255, with hash-to-group as a random oracle). A malicious party can lie about its
//! outcome or send points that match nothing; see `papers/psi.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bloom;
mod cardinality;
mod cascade;
mod error;
mod group;
pub mod grouped;
mod mutual;
mod shuffle;
pub mod wire;

pub use bloom::{BloomSet, BloomSizing, FalsePositiveRate};
pub use cardinality::{
    CardinalityInitiator, CardinalityInitiatorAwaitingReply, CardinalityOutcome,
    CardinalityResponder, SetEncoding,
};
pub use cascade::{
    AmbiguousKey, CascadeKeys, CascadeLink, CascadeOutcome, CascadePlan, CascadeStep, PendingRound,
};
pub use error::PsiError;
pub use group::{LinkId, MatchKeyName, PROTOCOL_TAG, hash_to_group};
pub use grouped::{
    GROUPED_TAG, GroupCount, GroupedAnswerer, GroupedAnswererOutcome, GroupedAnswererReady,
    GroupedLimits, GroupedOutcome, GroupedQuerier, GroupedQuerierAwaitingReply, GroupedQuery,
    GroupedReply, SizeBuckets, TokenGroup, grouped_hash_to_group, grouped_in_memory, point_tag,
};
pub use mutual::{
    InitiatorAwaitingReply, MAX_SET_SIZE, Match, MutualInitiator, MutualOutcome, MutualResponder,
    ResponderAwaitingReblinded, ResponderReady,
};
pub use wire::{
    BlindedSet, CardinalityReply, EncodeRange, MutualReply, PointsDecoder, ReblindedSet,
    ResponderSet, WireLimits,
};

use rand_core::CryptoRng;

/// The field arithmetic curve25519-dalek runs on this CPU in this build: `"avx512ifma"`,
/// `"avx2"` or `"serial"`, for benchmark reports.
///
/// dalek chooses when it is compiled which backends exist and, among them, at run time which
/// one the CPU supports: IFMA only when built with `--cfg curve25519_dalek_backend="avx512"`
/// (or with the `avx512ifma` and `avx512vl` target features), AVX2 on any x86-64 build unless
/// the portable code is forced with `--cfg curve25519_dalek_backend="serial"`. This function
/// repeats that choice (it reads the same cfg and the same CPU features); it does not change it.
///
/// # Example
/// ```
/// assert!(["avx512ifma", "avx2", "serial"].contains(&blindlink_psi::curve_backend()));
/// ```
pub fn curve_backend() -> &'static str {
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    {
        let portable = cfg!(any(
            curve25519_dalek_backend = "serial",
            curve25519_dalek_backend = "fiat"
        ));
        let ifma_built = cfg!(curve25519_dalek_backend = "avx512")
            || cfg!(all(
                not(curve25519_dalek_backend = "simd"),
                target_feature = "avx512ifma",
                target_feature = "avx512vl"
            ));
        if !portable {
            if ifma_built
                && std::arch::is_x86_feature_detected!("avx512ifma")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return "avx512ifma";
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return "avx2";
            }
        }
    }
    "serial"
}

/// Runs a whole mutual PSI session with both parties in this process, passing the messages
/// as values (no encoding): for tests, benchmarks and `blindlink bench psi`.
///
/// # Errors
/// Whatever a step reports; with two honest parties, only [`PsiError::SetTooLarge`].
///
/// # Example
/// ```
/// use blindlink_psi::{MatchKeyName, mutual_in_memory};
/// use rand_chacha::ChaCha20Rng;
/// use rand_core::SeedableRng;
/// let key = MatchKeyName::new("k").unwrap();
/// let (a, b) = mutual_in_memory(&key, &["x", "y"], &["y", "z"],
///     &mut ChaCha20Rng::from_seed([1; 32]), &mut ChaCha20Rng::from_seed([2; 32])).unwrap();
/// assert_eq!((a.matches[0].index, b.matches[0].index), (1, 0));
/// assert_eq!(a.matches[0].link_id, b.matches[0].link_id);
/// ```
pub fn mutual_in_memory<E, F, R, S>(
    key: &MatchKeyName,
    initiator_elements: &[E],
    responder_elements: &[F],
    initiator_rng: &mut R,
    responder_rng: &mut S,
) -> Result<(MutualOutcome, MutualOutcome), PsiError>
where
    E: AsRef<[u8]> + Sync,
    F: AsRef<[u8]> + Sync,
    R: CryptoRng + ?Sized,
    S: CryptoRng + ?Sized,
{
    let (initiator, request) = MutualInitiator::start(key, initiator_elements, initiator_rng)?;
    let responder = MutualResponder::start(key, responder_elements, responder_rng)?;
    let (responder, reply) = responder.handle_blinded_set(&request)?;
    let (initiator_outcome, reblinded) = initiator.handle_reply(&reply)?;
    let responder_outcome = responder.handle_reblinded_set(&reblinded)?;
    Ok((initiator_outcome, responder_outcome))
}
