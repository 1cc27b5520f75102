//! Bloom-filter compression of the responder's blinded set (cardinality-only PSI).
//!
//! Sizing follows the whole-query reasoning of OpenMined PSI: a caller asks for a
//! false-positive rate `f` for the whole intersection, the initiator makes `q` membership
//! queries, so each query may err with at most `p = f / max(q, n)` where `n` is the responder's
//! set size (the union bound over the larger set, so the rate holds whichever side is larger).
//! The filter then has `m = ⌈n · ln(1/p) / ln²2⌉` bits and `k = round(m/n · ln 2)` hash
//! functions, the textbook optimum for `n` items.
//!
//! The filter is the `bloomfilter` crate's. It derives bit positions with SipHash-1-3 keyed by a
//! 32-byte seed through `std::hash::Hash`; two things make that fit this project's rule that bit
//! positions come from explicit keyed hashes of bytes:
//! - the seed is drawn from the session's explicit RNG and travels in the filter header, so the
//!   filter is deterministic for a seed and both sides use the same keys;
//! - items are hashed through [`PointKey`], whose `Hash` writes exactly the 32 point bytes
//!   (no length prefix, whose width and byte order would differ between platforms).
//!
//! What the filter reveals is no more than the raw set: blinded points under the responder's
//! secret, which the initiator cannot invert.

use std::hash::{Hash, Hasher};

use bloomfilter::Bloom;
use curve25519_dalek::ristretto::CompressedRistretto;

use crate::error::PsiError;

/// Header bytes of the `bloomfilter` 3.x serialisation: version (1), bitmap length in bytes
/// (u64 LE), number of hash functions (u32 LE), SipHash seed (32).
const HEADER_LEN: usize = 1 + 8 + 4 + 32;
const FORMAT_VERSION: u8 = 1;
/// Above this a filter would cost more per query than the whole protocol; a peer asking for it
/// is hostile or misconfigured.
pub const MAX_HASH_FUNCTIONS: u32 = 128;

/// A false-positive rate for the whole query, strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct FalsePositiveRate(f64);

impl FalsePositiveRate {
    /// Validates a rate.
    ///
    /// # Errors
    /// [`PsiError::InvalidFalsePositiveRate`] unless `0 < value < 1`.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::FalsePositiveRate;
    /// assert!(FalsePositiveRate::new(1e-9).is_ok());
    /// assert!(FalsePositiveRate::new(0.0).is_err());
    /// ```
    pub fn new(value: f64) -> Result<Self, PsiError> {
        if value > 0.0 && value < 1.0 {
            Ok(Self(value))
        } else {
            Err(PsiError::InvalidFalsePositiveRate { value })
        }
    }

    /// The rate.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// The size of a filter for a given query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BloomSizing {
    /// The rate asked for over the whole query.
    pub query_rate: FalsePositiveRate,
    /// The rate allowed per membership test: `query_rate / max(queries, items)`.
    pub per_test_rate: f64,
    /// Bitmap length in bytes.
    pub bitmap_bytes: usize,
}

impl BloomSizing {
    /// Sizes a filter for `items` responder elements and `queries` initiator elements.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::{BloomSizing, FalsePositiveRate};
    /// let sizing = BloomSizing::new(FalsePositiveRate::new(1e-6).unwrap(), 1000, 1000);
    /// assert!((sizing.per_test_rate - 1e-9).abs() < 1e-20);
    /// // ln(1e9) / ln(2)^2 ≈ 43.1 bits per item
    /// assert_eq!(sizing.bitmap_bytes, 5392);
    /// ```
    pub fn new(query_rate: FalsePositiveRate, items: usize, queries: usize) -> Self {
        let larger = items.max(queries).max(1);
        let per_test_rate = query_rate.0 / larger as f64;
        let ln2 = std::f64::consts::LN_2;
        let bits = (items.max(1) as f64) * (1.0 / per_test_rate).ln() / (ln2 * ln2);
        let bitmap_bytes = ((bits / 8.0).ceil() as usize).max(1);
        Self {
            query_rate,
            per_test_rate,
            bitmap_bytes,
        }
    }
}

/// A Bloom filter of blinded points as sent on the wire.
#[derive(Clone)]
pub struct BloomSet {
    filter: Bloom<PointKey>,
}

/// A compressed point as a Bloom-filter item: hashes exactly its 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointKey(pub [u8; 32]);

impl Hash for PointKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl BloomSet {
    pub(crate) fn build(
        sizing: &BloomSizing,
        items: &[CompressedRistretto],
        seed: &[u8; 32],
    ) -> Result<Self, PsiError> {
        let mut filter = Bloom::new_with_seed(sizing.bitmap_bytes, items.len().max(1), seed)
            .map_err(|_| PsiError::InvalidBloomFilter {
                reason: "cannot build filter",
            })?;
        for item in items {
            filter.set(&PointKey(item.to_bytes()));
        }
        Ok(Self { filter })
    }

    /// Parses the `bloomfilter` serialisation after checking its header.
    ///
    /// # Errors
    /// [`PsiError::InvalidBloomFilter`] for a short header, an unknown format version, a
    /// length that disagrees with the bytes present, an empty bitmap or a number of hash
    /// functions outside `1..=128`.
    pub fn from_filter_bytes(bytes: &[u8]) -> Result<Self, PsiError> {
        let invalid = |reason| PsiError::InvalidBloomFilter { reason };
        if bytes.len() < HEADER_LEN {
            return Err(invalid("shorter than its 45-byte header"));
        }
        if bytes[0] != FORMAT_VERSION {
            return Err(invalid("unknown format version"));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[1..9]);
        let bitmap_len = u64::from_le_bytes(len);
        if bitmap_len == 0 {
            return Err(invalid("empty bitmap"));
        }
        if bitmap_len != (bytes.len() - HEADER_LEN) as u64 {
            return Err(invalid("bitmap length disagrees with the bytes present"));
        }
        let hash_functions = u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]);
        if hash_functions == 0 || hash_functions > MAX_HASH_FUNCTIONS {
            return Err(invalid("number of hash functions outside 1..=128"));
        }
        let filter = Bloom::from_slice(bytes).map_err(|_| invalid("rejected by the decoder"))?;
        Ok(Self { filter })
    }

    /// The serialised filter (header and bitmap).
    pub fn filter_bytes(&self) -> &[u8] {
        self.filter.as_slice()
    }

    /// Number of hash functions.
    pub fn hash_functions(&self) -> u32 {
        self.filter.number_of_hash_functions()
    }

    /// Bitmap length in bits.
    pub fn bits(&self) -> u64 {
        self.filter.len()
    }

    /// The false-positive rate of one membership test, estimated from the filter's fill:
    /// `(set bits / bits)^k`.
    pub fn per_test_rate(&self) -> f64 {
        let bitmap = &self.filter.as_slice()[HEADER_LEN..];
        let set: u64 = bitmap.iter().map(|b| u64::from(b.count_ones())).sum();
        let fill = set as f64 / self.bits() as f64;
        fill.powi(self.hash_functions() as i32)
    }

    pub(crate) fn contains(&self, point: &CompressedRistretto) -> bool {
        self.filter.check(&PointKey(point.to_bytes()))
    }
}

impl PartialEq for BloomSet {
    fn eq(&self, other: &Self) -> bool {
        self.filter.as_slice() == other.filter.as_slice()
    }
}

impl Eq for BloomSet {}

impl std::fmt::Debug for BloomSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BloomSet")
            .field("bits", &self.bits())
            .field("hash_functions", &self.hash_functions())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u8, bitmap_len: u64, k: u32, body: usize) -> Vec<u8> {
        let mut bytes = vec![version];
        bytes.extend_from_slice(&bitmap_len.to_le_bytes());
        bytes.extend_from_slice(&k.to_le_bytes());
        bytes.extend_from_slice(&[9u8; 32]);
        bytes.extend(std::iter::repeat_n(0u8, body));
        bytes
    }

    fn check(bytes: &[u8], expected: Result<(), &str>) {
        let got = BloomSet::from_filter_bytes(bytes).map(|_| ());
        let expected = expected.map_err(|reason| PsiError::InvalidBloomFilter {
            reason: match reason {
                "short" => "shorter than its 45-byte header",
                "version" => "unknown format version",
                "empty" => "empty bitmap",
                "length" => "bitmap length disagrees with the bytes present",
                "k" => "number of hash functions outside 1..=128",
                other => panic!("unknown reason {other}"),
            },
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn header_checks() {
        check(&[], Err("short"));
        check(&[1; 44], Err("short"));
        check(&header(2, 8, 3, 8), Err("version"));
        check(&header(1, 0, 3, 0), Err("empty"));
        check(&header(1, 8, 3, 7), Err("length"));
        check(&header(1, 8, 3, 9), Err("length"));
        check(&header(1, u64::MAX, 3, 8), Err("length"));
        check(&header(1, 8, 0, 8), Err("k"));
        check(&header(1, 8, 129, 8), Err("k"));
        check(&header(1, 8, u32::MAX, 8), Err("k"));
        check(&header(1, 8, 128, 8), Ok(()));
        check(&header(1, 1, 1, 1), Ok(()));
    }

    #[test]
    fn sizing_rejects_bad_rates() {
        for value in [0.0, 1.0, -0.5, 2.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                FalsePositiveRate::new(value),
                Err(PsiError::InvalidFalsePositiveRate { .. })
            ));
        }
    }

    #[test]
    fn sizing_uses_the_larger_set() {
        let rate = FalsePositiveRate::new(1e-6).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * b;
        assert!(close(BloomSizing::new(rate, 10, 1000).per_test_rate, 1e-9));
        assert!(close(BloomSizing::new(rate, 1000, 10).per_test_rate, 1e-9));
        assert_eq!(BloomSizing::new(rate, 0, 0).per_test_rate, 1e-6);
        assert_eq!(BloomSizing::new(rate, 0, 0).bitmap_bytes, 4);
    }

    #[test]
    fn filter_is_deterministic_for_a_seed_and_has_no_false_negatives() {
        let points: Vec<CompressedRistretto> =
            (0u8..200).map(|i| CompressedRistretto([i; 32])).collect();
        let sizing = BloomSizing::new(FalsePositiveRate::new(1e-6).unwrap(), 200, 200);
        let a = BloomSet::build(&sizing, &points, &[3; 32]).unwrap();
        let b = BloomSet::build(&sizing, &points, &[3; 32]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, BloomSet::build(&sizing, &points, &[4; 32]).unwrap());
        assert!(points.iter().all(|p| a.contains(p)));
        let outside = (200u8..=255).filter(|&i| a.contains(&CompressedRistretto([i; 32])));
        assert_eq!(outside.count(), 0);
        let reparsed = BloomSet::from_filter_bytes(a.filter_bytes()).unwrap();
        assert_eq!(reparsed, a);
        assert!(a.per_test_rate() < 1e-8, "{}", a.per_test_rate());
    }

    #[test]
    fn bit_positions_are_pinned() {
        // Golden value: the filter bytes for a fixed seed and items must not change with the
        // platform or a dependency update, or two peers would disagree.
        let points: Vec<CompressedRistretto> =
            (1u8..=4).map(|i| CompressedRistretto([i; 32])).collect();
        let sizing = BloomSizing::new(FalsePositiveRate::new(0.01).unwrap(), 4, 4);
        let set = BloomSet::build(&sizing, &points, &[5; 32]).unwrap();
        let bitmap = &set.filter_bytes()[HEADER_LEN..];
        let hex: String = bitmap.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!((set.hash_functions(), hex.as_str()), (10, "5c059541170921"));
    }
}
