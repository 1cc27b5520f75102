//! Keyed MinHash blocking: band tokens two parties can intersect privately.
//!
//! A record is a set of elements (the set bit positions of a CLK, or the tokens of its fields).
//! For a random order of all possible elements, the smallest element of two sets is the same
//! with probability equal to their Jaccard similarity `J`. A band joins `rows` such minima
//! under independent orders, so two records share a band token with probability `J^rows`, and
//! become a candidate pair when any of `bands` tokens agree: `1 - (1 - J^rows)^bands`. More
//! rows cut the candidates of unrelated records; more bands win back the recall of alike ones.
//!
//! The order is keyed: each element is hashed once with HMAC-SHA-256 under the
//! [`BlockingKey`] to a 64-bit value `h`, and table `t`'s rank of the element is
//! `mix(h ^ k_t)`, where `k_t` is a further keyed 64-bit value per table and `mix` a bijective
//! 64-bit finaliser. A party without the key cannot tell which element a token stands for.
//!
//! # Security
//! The table values are derived from the key and are zeroized with the hasher; a band token is
//! a keyed digest of the record's elements and, like any token, says which records share it to
//! whoever sees two of them. Blocking tokens are meant to go through a private set
//! intersection, never to the peer in the clear.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{BlockingKey, MatchingError};

/// Domain separation of the element hash.
const ELEMENT_DOMAIN: &[u8] = b"blindlink/v1/minhash/element";
/// Domain separation of the per-table values.
const TABLE_DOMAIN: &[u8] = b"blindlink/v1/minhash/table";
/// Domain separation of the whole-set token.
const SET_DOMAIN: &[u8] = b"blindlink/v1/minhash/set";
/// The band number of a whole-set token (no band has it: there are at most
/// [`MAX_MINHASH_BANDS`]).
pub const SET_TOKEN_BAND: u32 = u32::MAX;
/// Most bands.
pub const MAX_MINHASH_BANDS: usize = 64;
/// Most minima per band.
pub const MAX_MINHASH_ROWS: usize = 16;

/// The shape of a MinHash blocking: `bands` tokens per record, each joining `rows` minima.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinHashParameters {
    /// Band tokens per record; a pair becomes a candidate when one agrees.
    pub bands: usize,
    /// Minima joined in one band token.
    pub rows: usize,
}

impl MinHashParameters {
    /// The probability that two records of Jaccard similarity `jaccard` share a band token:
    /// `1 - (1 - J^rows)^bands`.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::MinHashParameters;
    /// let p = MinHashParameters { bands: 20, rows: 3 };
    /// assert!(p.candidate_probability(0.6) > 0.98);
    /// assert!(p.candidate_probability(0.1) < 0.02);
    /// ```
    #[must_use]
    pub fn candidate_probability(&self, jaccard: f64) -> f64 {
        let band = jaccard.clamp(0.0, 1.0).powi(self.rows as i32);
        1.0 - (1.0 - band).powi(self.bands as i32)
    }
}

/// A keyed MinHash over sets of byte-string elements.
///
/// # Example
/// ```
/// use blindlink_matching::{BlockingKey, MinHashParameters, MinHasher};
/// let hasher = MinHasher::new(&BlockingKey::new([7; 32]), MinHashParameters { bands: 3, rows: 2 })?;
/// let a = hasher.tokens([b"ab".as_slice(), b"bc", b"cd"]);
/// assert_eq!(a.len(), 3);
/// assert_eq!(a[1][..4], [0, 0, 0, 1]); // the band number, then 2 minima of 8 bytes
/// assert_eq!(a[1].len(), 4 + 2 * 8);
/// assert_eq!(a, hasher.tokens([b"cd".as_slice(), b"ab", b"bc", b"ab"])); // a set: order and repeats do not count
/// assert!(hasher.tokens(std::iter::empty::<&[u8]>()).is_empty());
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MinHasher {
    #[zeroize(skip)]
    params: MinHashParameters,
    key: [u8; 32],
    /// `k_t` of table `t = band * rows + row`.
    tables: Vec<u64>,
}

impl std::fmt::Debug for MinHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl MinHasher {
    /// Derives the element hash and the table values from `key`.
    ///
    /// # Errors
    /// [`MatchingError::InvalidMinHashParameters`] unless there are 1 to [`MAX_MINHASH_BANDS`]
    /// bands of 1 to [`MAX_MINHASH_ROWS`] rows.
    pub fn new(key: &BlockingKey, params: MinHashParameters) -> Result<Self, MatchingError> {
        if !(1..=MAX_MINHASH_BANDS).contains(&params.bands)
            || !(1..=MAX_MINHASH_ROWS).contains(&params.rows)
        {
            return Err(MatchingError::InvalidMinHashParameters {
                bands: params.bands,
                rows: params.rows,
                max_bands: MAX_MINHASH_BANDS,
                max_rows: MAX_MINHASH_ROWS,
            });
        }
        let tables = (0..params.bands * params.rows)
            .map(|t| {
                let mut mac = mac(&key.0);
                mac.update(TABLE_DOMAIN);
                mac.update(&(t as u32).to_be_bytes());
                first_u64(&mac.finalize().into_bytes())
            })
            .collect();
        Ok(Self {
            params,
            key: key.0,
            tables,
        })
    }

    /// The shape.
    #[must_use]
    pub fn params(&self) -> MinHashParameters {
        self.params
    }

    /// The keyed 64-bit hash of one element (HMAC-SHA-256 under the key, truncated).
    #[must_use]
    pub fn element_hash(&self, element: &[u8]) -> u64 {
        let mut mac = mac(&self.key);
        mac.update(ELEMENT_DOMAIN);
        mac.update(element);
        first_u64(&mac.finalize().into_bytes())
    }

    /// The band tokens of a set of elements: per band, the band number (4 bytes, big-endian)
    /// then `rows` minima (8 bytes each); none for an empty set.
    pub fn tokens<E: AsRef<[u8]>>(&self, elements: impl IntoIterator<Item = E>) -> Vec<Vec<u8>> {
        let hashes: Vec<u64> = elements
            .into_iter()
            .map(|e| self.element_hash(e.as_ref()))
            .collect();
        self.tokens_of_hashes(&hashes)
    }

    /// As [`MinHasher::tokens`], from the elements' [`MinHasher::element_hash`]es (repeats do
    /// not count); lets a caller hash each distinct element once.
    #[must_use]
    pub fn tokens_of_hashes(&self, hashes: &[u64]) -> Vec<Vec<u8>> {
        self.band_tokens_of_hashes(hashes, 0..self.params.bands)
    }

    /// As [`MinHasher::tokens_of_hashes`], only the tokens of the bands in `bands` (clipped to
    /// the hasher's bands): lets a caller take separate bands over separate subsets of a
    /// record's elements (e.g. one band per pair of fields), each band still its own order.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::{BlockingKey, MinHashParameters, MinHasher};
    /// let hasher = MinHasher::new(&BlockingKey::new([7; 32]), MinHashParameters { bands: 4, rows: 2 })?;
    /// let hashes = [hasher.element_hash(b"ab"), hasher.element_hash(b"bc")];
    /// let all = hasher.tokens_of_hashes(&hashes);
    /// assert_eq!(hasher.band_tokens_of_hashes(&hashes, 1..3), all[1..3]);
    /// assert_eq!(hasher.band_tokens_of_hashes(&hashes, 3..9), all[3..]);
    /// # Ok::<(), blindlink_matching::MatchingError>(())
    /// ```
    #[must_use]
    pub fn band_tokens_of_hashes(
        &self,
        hashes: &[u64],
        bands: std::ops::Range<usize>,
    ) -> Vec<Vec<u8>> {
        if hashes.is_empty() {
            return Vec::new();
        }
        let rows = self.params.rows;
        let bands = bands.start.min(self.params.bands)..bands.end.min(self.params.bands);
        bands
            .map(|band| {
                let mut token = Vec::with_capacity(4 + 8 * rows);
                token.extend_from_slice(&(band as u32).to_be_bytes());
                for &k in &self.tables[band * rows..(band + 1) * rows] {
                    let min = hashes.iter().map(|&h| mix(h ^ k)).min().unwrap_or(u64::MAX);
                    token.extend_from_slice(&min.to_be_bytes());
                }
                token
            })
            .collect()
    }
}

impl MinHasher {
    /// The token of a whole multiset of element hashes (order does not count, repeats do):
    /// [`SET_TOKEN_BAND`] (4 bytes, big-endian), then 32 bytes of HMAC-SHA-256 under the key
    /// over the sorted hashes. Two records share it when their elements are all equal: an
    /// exact match on the whole record, next to the band tokens' near matches; none for an
    /// empty multiset.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::{BlockingKey, MinHashParameters, MinHasher};
    /// let hasher = MinHasher::new(&BlockingKey::new([7; 32]), MinHashParameters { bands: 1, rows: 1 })?;
    /// let (a, b) = (hasher.element_hash(b"ab"), hasher.element_hash(b"bc"));
    /// let token = hasher.set_token(&[a, b, b]).unwrap();
    /// assert_eq!((token.len(), &token[..4]), (36, [0xff; 4].as_slice()));
    /// assert_eq!(Some(token.clone()), hasher.set_token(&[b, a, b]));
    /// assert_ne!(Some(token), hasher.set_token(&[a, b]));
    /// assert_eq!(hasher.set_token(&[]), None);
    /// # Ok::<(), blindlink_matching::MatchingError>(())
    /// ```
    #[must_use]
    pub fn set_token(&self, hashes: &[u64]) -> Option<Vec<u8>> {
        if hashes.is_empty() {
            return None;
        }
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        let mut mac = mac(&self.key);
        mac.update(SET_DOMAIN);
        for h in &sorted {
            mac.update(&h.to_be_bytes());
        }
        let mut token = SET_TOKEN_BAND.to_be_bytes().to_vec();
        token.extend_from_slice(&mac.finalize().into_bytes());
        Some(token)
    }
}

/// MinHash over the set bits of CLKs of one length: the element hash of every bit position is
/// computed once.
///
/// # Example
/// ```
/// use blindlink_matching::{BlockingKey, ClkMinHasher, MinHashParameters, MinHasher};
/// let hasher = MinHasher::new(&BlockingKey::new([7; 32]), MinHashParameters { bands: 4, rows: 2 })?;
/// let clks = ClkMinHasher::new(hasher, 64);
/// let a = clks.tokens(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(a.len(), 4);
/// assert_ne!(a, clks.tokens(&[0, 0, 0xff, 0xff, 0, 0, 0, 0]));
/// assert!(clks.tokens(&[0; 8]).is_empty());
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClkMinHasher {
    hasher: MinHasher,
    /// The element hash of each bit position (the position as 4 big-endian bytes).
    positions: Vec<u64>,
}

impl ClkMinHasher {
    /// A hasher for CLKs of `filter_bits` bits.
    #[must_use]
    pub fn new(hasher: MinHasher, filter_bits: usize) -> Self {
        let positions = (0..filter_bits)
            .map(|p| hasher.element_hash(&(p as u32).to_be_bytes()))
            .collect();
        Self { hasher, positions }
    }

    /// The band tokens of one CLK (bits most significant first); none for an all-zero CLK.
    /// Bits past the hasher's filter length are ignored.
    #[must_use]
    pub fn tokens(&self, clk: &[u8]) -> Vec<Vec<u8>> {
        let hashes: Vec<u64> = clk
            .iter()
            .enumerate()
            .flat_map(|(i, &byte)| {
                (0..8)
                    .filter(move |b| byte & (0x80 >> b) != 0)
                    .map(move |b| i * 8 + b)
            })
            .filter_map(|p| self.positions.get(p).copied())
            .collect();
        self.hasher.tokens_of_hashes(&hashes)
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac takes keys of any length")
}

fn first_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(word)
}

/// The 64-bit finaliser of SplitMix64: a bijection that spreads every input bit over the
/// output, so the ranks of one table look independent of another's.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn hasher(bands: usize, rows: usize) -> MinHasher {
        MinHasher::new(
            &BlockingKey::new([9; 32]),
            MinHashParameters { bands, rows },
        )
        .unwrap()
    }

    fn check(bands: usize, rows: usize, expected: &str) {
        let got = MinHasher::new(
            &BlockingKey::new([1; 32]),
            MinHashParameters { bands, rows },
        )
        .map(|h| h.tokens([b"x"])[0].len().to_string())
        .unwrap_or_else(|e| e.to_string());
        assert_eq!(got, expected, "{bands} x {rows}");
    }

    #[test]
    fn shapes() {
        check(1, 1, "12");
        check(64, 16, "132");
        check(
            0,
            2,
            "minhash blocking needs 1 to 64 bands of 1 to 16 minima, got 0 bands of 2",
        );
        check(
            65,
            2,
            "minhash blocking needs 1 to 64 bands of 1 to 16 minima, got 65 bands of 2",
        );
        check(
            4,
            0,
            "minhash blocking needs 1 to 64 bands of 1 to 16 minima, got 4 bands of 0",
        );
        check(
            4,
            17,
            "minhash blocking needs 1 to 64 bands of 1 to 16 minima, got 4 bands of 17",
        );
    }

    #[test]
    fn tokens_depend_on_the_key_the_band_and_the_set_only() {
        let h = hasher(4, 3);
        let a = h.tokens([b"ab".as_slice(), b"bc"]);
        assert_eq!(a, h.tokens([b"bc".as_slice(), b"ab", b"bc"]));
        assert_eq!(
            a.iter().map(|t| t[..4].to_vec()).collect::<Vec<_>>(),
            (0u32..4)
                .map(|b| b.to_be_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        let other = MinHasher::new(&BlockingKey::new([8; 32]), h.params()).unwrap();
        assert!(
            a.iter()
                .zip(other.tokens([b"ab".as_slice(), b"bc"]))
                .all(|(x, y)| *x != y)
        );
        let disjoint = h.tokens([b"cd".as_slice(), b"de"]);
        assert!(a.iter().zip(&disjoint).all(|(x, y)| x != y));
        // A CLK's bit p is the element p as 4 big-endian bytes.
        let clks = ClkMinHasher::new(h.clone(), 16);
        let positions: Vec<[u8; 4]> = [0u32, 7, 9].iter().map(|p| p.to_be_bytes()).collect();
        assert_eq!(clks.tokens(&[0x81, 0x40]), h.tokens(&positions));
        assert!(!format!("{h:?}").contains('9'));
    }

    #[test]
    fn candidate_probability_is_the_s_curve() {
        let p = MinHashParameters { bands: 2, rows: 2 };
        assert_eq!(p.candidate_probability(1.0), 1.0);
        assert_eq!(p.candidate_probability(0.0), 0.0);
        assert!((p.candidate_probability(0.5) - (1.0 - 0.75 * 0.75)).abs() < 1e-12);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Over 64 x 16 independent minima, the share that agree is within a few standard
        /// deviations of the Jaccard similarity of the two sets.
        #[test]
        fn the_share_of_agreeing_minima_tracks_jaccard(
            shared in 0usize..40, only_a in 0usize..40, only_b in 0usize..40, seed in any::<u32>(),
        ) {
            prop_assume!(shared + only_a > 0 && shared + only_b > 0);
            let element = |kind: u8, i: usize| {
                let mut e = seed.to_be_bytes().to_vec();
                e.push(kind);
                e.extend_from_slice(&(i as u32).to_be_bytes());
                e
            };
            let a: Vec<Vec<u8>> = (0..shared).map(|i| element(0, i))
                .chain((0..only_a).map(|i| element(1, i))).collect();
            let b: Vec<Vec<u8>> = (0..shared).map(|i| element(0, i))
                .chain((0..only_b).map(|i| element(2, i))).collect();
            let jaccard = shared as f64 / (shared + only_a + only_b) as f64;
            let h = hasher(MAX_MINHASH_BANDS, MAX_MINHASH_ROWS);
            let (ta, tb) = (h.tokens(&a), h.tokens(&b));
            let minima = |t: &[Vec<u8>]| -> Vec<[u8; 8]> {
                t.iter()
                    .flat_map(|token| token[4..].chunks_exact(8).map(|m| m.try_into().unwrap()))
                    .collect()
            };
            let (ma, mb) = (minima(&ta), minima(&tb));
            let agree = ma.iter().zip(&mb).filter(|(x, y)| x == y).count();
            let share = agree as f64 / ma.len() as f64;
            let sigma = (jaccard * (1.0 - jaccard) / ma.len() as f64).sqrt();
            prop_assert!((share - jaccard).abs() <= 5.0 * sigma + 1e-9,
                "share {share}, jaccard {jaccard}, sigma {sigma}");
            // Distinct minima of one record are distinct tables, not one value repeated.
            let distinct: HashSet<_> = ma.iter().collect();
            prop_assert_eq!(distinct.len(), ma.len());
        }
    }
}
