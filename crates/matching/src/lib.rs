//! The matching engine of blindlink: it decides which encoded records (CLKs, Bloom filters)
//! belong to the same person.
//!
//! Design: a [`ClkStore`] keeps one data set's filters in one contiguous allocation of 64-byte
//! aligned lines with their popcounts precomputed, so a kernel streams through memory without
//! indirection. [`CandidateSearch`] sorts the other side by popcount and, for each record, only
//! visits the slice of filters whose popcount can reach the Dice threshold; the bit counting is
//! done by a [`DiceKernel`] chosen at run time (AVX-512 `VPOPCNTDQ`, AVX2, scalar `popcnt` or
//! portable Rust), all giving the exact counts of the scalar reference, so scores never depend on
//! the CPU. Rows are spread over all cores with rayon and candidates are handed out in bounded
//! batches, so memory does not grow with `|a| × |b|`. [`LshBlocker`] narrows the pairs first by
//! keyed bit sampling; [`MinHasher`] makes keyed MinHash band tokens of sets (CLK bits or field
//! tokens) that two parties intersect privately (the protocol's `fuzzy` blocking).
//! [`greedy`] (anonlink's semantics) and [`optimal`] turn candidates into one-to-one links, and
//! [`LinkageQuality`] / [`BlockingQuality`] measure the result against a truth set.
//!
//! The crate does no I/O: it takes bytes and returns values; the CLI reads and writes files.
//!
//! # Example
//! ```
//! use blindlink_matching::{CandidateSearch, ClkStore, DiceThreshold, greedy};
//! let a = ClkStore::from_bytes(64, &[0xff, 0x0f, 0, 0, 0, 0, 0, 0])?;
//! let b = ClkStore::from_bytes(64, &[0, 0, 0, 0, 0, 0, 0, 0xff, /**/ 0xff, 0x0e, 0, 0, 0, 0, 0, 0])?;
//! let (candidates, _) = CandidateSearch::new(DiceThreshold::new(0.8)?).collect(&a, &b)?;
//! let links = greedy(&candidates)?;
//! assert_eq!((links[0].a, links[0].b), (0, 1));
//! # Ok::<(), blindlink_matching::MatchingError>(())
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod blocking;
mod candidates;
mod dice;
mod error;
pub mod fellegi_sunter;
mod metrics;
mod minhash;
mod simd;
mod solve;
mod store;

pub use blocking::{
    BlockedPairs, BlockingKey, LshBlocker, LshParameters, MAX_BANDS, MAX_BITS_PER_BAND,
};
pub use candidates::{Candidate, CandidateSearch, DiceThreshold, SearchStats};
pub use dice::{DiceKernel, dice, dice_from_counts, dice_upper_bound};
pub use error::MatchingError;
pub use metrics::{
    BlockingQuality, FlagQuality, LinkageQuality, quality_by_threshold, threshold_sweep,
};
pub use minhash::{
    ClkMinHasher, MAX_MINHASH_BANDS, MAX_MINHASH_ROWS, MinHashParameters, MinHasher, SET_TOKEN_BAND,
};
pub use solve::{DEFAULT_OPTIMAL_CELL_LIMIT, greedy, optimal};
pub use store::{ClkStore, MAX_FILTER_BITS};
