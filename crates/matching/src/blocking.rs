//! Hamming LSH blocking by keyed bit sampling.
//!
//! Each of `bands` bands samples `bits` distinct bit positions of the filter; a record's token
//! for a band is the band number followed by the sampled bits. Two records become a candidate
//! pair when they share the token of at least one band. Two filters at Hamming distance `d` out
//! of `n` bits agree on one band with probability about `(1 - d/n)^bits`, so more bits per band
//! cut comparisons and more bands win back recall.
//!
//! Positions come from HMAC-SHA-256 under a [`BlockingKey`], so a party without the key cannot
//! tell which bits a token reveals. Tokens are plain, deterministic bytes per record and band:
//! two parties holding the same key can intersect them with a private set intersection instead
//! of exchanging them.

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use rayon::prelude::*;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{ClkStore, MatchingError};

/// Domain separation for the sampling positions.
const DOMAIN: &[u8] = b"blindlink/v1/lsh-bit-sampling";
/// At most this many bands; far above any useful setting, it bounds work on hostile parameters.
pub const MAX_BANDS: usize = 1024;
/// At most this many bits per band (tokens stay short).
pub const MAX_BITS_PER_BAND: usize = 256;

/// The secret key that chooses the sampled bit positions.
///
/// # Security
/// Zeroized on drop; never printed (its `Debug` shows no bytes).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlockingKey(pub(crate) [u8; 32]);

impl BlockingKey {
    /// A key from 32 secret bytes (for two parties: derived from their shared linkage secret).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for BlockingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingKey(..)")
    }
}

/// Bands and bits per band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LshParameters {
    /// Number of bands (independent samples); a pair needs to agree on one.
    pub bands: usize,
    /// Bits sampled per band.
    pub bits_per_band: usize,
}

/// A keyed bit-sampling LSH for one filter length.
///
/// # Example
/// ```
/// use blindlink_matching::{BlockingKey, ClkStore, LshBlocker, LshParameters};
/// let blocker = LshBlocker::new(&BlockingKey::new([7; 32]), LshParameters { bands: 4, bits_per_band: 12 }, 1024)?;
/// let a = ClkStore::from_bytes(1024, &[0x5a; 128])?;
/// let b = ClkStore::from_bytes(1024, &[0x5a; 128])?;
/// assert_eq!(blocker.token(&a, 0, 2), blocker.token(&b, 0, 2));
/// assert_eq!(blocker.token(&a, 0, 2).len(), 4 + 2);
/// let pairs = blocker.block(&a, &b)?;
/// assert_eq!(pairs.row(0), [0]);
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LshBlocker {
    filter_bits: usize,
    /// `positions[band]`: the sampled bit positions of that band, distinct, in sampling order.
    positions: Vec<Vec<usize>>,
}

impl LshBlocker {
    /// Derives the sampled positions of every band from `key`.
    ///
    /// # Errors
    /// [`MatchingError::InvalidLshParameters`] for zero or too many bands or bits, or more bits
    /// per band than the filter has.
    pub fn new(
        key: &BlockingKey,
        params: LshParameters,
        filter_bits: usize,
    ) -> Result<Self, MatchingError> {
        let max_bits = MAX_BITS_PER_BAND.min(filter_bits);
        if params.bands == 0
            || params.bands > MAX_BANDS
            || params.bits_per_band == 0
            || params.bits_per_band > max_bits
        {
            return Err(MatchingError::InvalidLshParameters {
                bands: params.bands,
                bits: params.bits_per_band,
                max_bands: MAX_BANDS,
                max_bits,
            });
        }
        let positions = (0..params.bands)
            .map(|band| sample_band(key, filter_bits, params.bits_per_band, band))
            .collect();
        Ok(Self {
            filter_bits,
            positions,
        })
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.positions.len()
    }

    /// The token of record `index` of `store` in `band`: the band number (4 bytes, big-endian)
    /// then the sampled bits, packed most significant bit first and zero-padded to whole bytes.
    ///
    /// # Panics
    /// If `band` or `index` is out of range or the store's filter length differs (caller bugs).
    pub fn token(&self, store: &ClkStore, index: usize, band: usize) -> Vec<u8> {
        let mut token = Vec::new();
        self.token_into(store, index, band, &mut token);
        token
    }

    /// As [`LshBlocker::token`], into a reused buffer.
    fn token_into(&self, store: &ClkStore, index: usize, band: usize, token: &mut Vec<u8>) {
        assert_eq!(
            store.filter_bits(),
            self.filter_bits,
            "filter length differs"
        );
        let positions = &self.positions[band];
        token.clear();
        token.extend_from_slice(&(band as u32).to_be_bytes());
        for chunk in positions.chunks(8) {
            let mut byte = 0u8;
            for (k, &pos) in chunk.iter().enumerate() {
                if store.bit(index, pos) {
                    byte |= 0x80 >> k;
                }
            }
            token.push(byte);
        }
    }

    /// All pairs of records of `a` and `b` that share at least one band token.
    ///
    /// # Errors
    /// [`MatchingError::MismatchedFilterLengths`] when a store's filter length differs from the
    /// blocker's.
    pub fn block(&self, a: &ClkStore, b: &ClkStore) -> Result<BlockedPairs, MatchingError> {
        for store in [a, b] {
            if store.filter_bits() != self.filter_bits {
                return Err(MatchingError::MismatchedFilterLengths {
                    a_bits: self.filter_bits,
                    b_bits: store.filter_bits(),
                });
            }
        }
        // One bucket map per band over b, then every row of a gathers its partners from all
        // bands and deduplicates once (rows in parallel).
        let buckets: Vec<HashMap<Vec<u8>, Vec<u32>>> = (0..self.bands())
            .into_par_iter()
            .map(|band| {
                let mut map: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
                for j in 0..b.len() {
                    map.entry(self.token(b, j, band))
                        .or_default()
                        .push(j as u32);
                }
                map
            })
            .collect();
        let partners: Vec<Vec<u32>> = (0..a.len())
            .into_par_iter()
            .map_init(Vec::new, |token, i| {
                let mut row = Vec::new();
                for (band, map) in buckets.iter().enumerate() {
                    self.token_into(a, i, band, token);
                    if let Some(bucket) = map.get(token.as_slice()) {
                        row.extend_from_slice(bucket);
                        // Bounds a row's memory at about twice |b| whatever the bands.
                        if row.len() > 2 * b.len() {
                            row.sort_unstable();
                            row.dedup();
                        }
                    }
                }
                row.sort_unstable();
                row.dedup();
                row
            })
            .collect();
        let mut offsets = Vec::with_capacity(a.len() + 1);
        offsets.push(0);
        let mut targets = Vec::new();
        for row in partners {
            targets.extend_from_slice(&row);
            offsets.push(targets.len());
        }
        Ok(BlockedPairs {
            records_b: b.len(),
            offsets,
            targets,
        })
    }
}

/// `bits` distinct positions in `0..filter_bits` for `band`, from HMAC-SHA-256 in counter mode.
fn sample_band(key: &BlockingKey, filter_bits: usize, bits: usize, band: usize) -> Vec<usize> {
    let mut chosen = Vec::with_capacity(bits);
    let mut taken = vec![false; filter_bits];
    let mut counter = 0u32;
    while chosen.len() < bits {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0)
            .expect("hmac takes keys of any length");
        mac.update(DOMAIN);
        mac.update(&(filter_bits as u32).to_be_bytes());
        mac.update(&(band as u32).to_be_bytes());
        mac.update(&counter.to_be_bytes());
        counter += 1;
        let digest = mac.finalize().into_bytes();
        for word in digest.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            // The modulo bias is below 2^-50 for any supported filter length.
            let pos = (u64::from_be_bytes(w) % filter_bits as u64) as usize;
            if !taken[pos] && chosen.len() < bits {
                taken[pos] = true;
                chosen.push(pos);
            }
        }
    }
    chosen
}

/// The pairs a blocking step lets through, per record of `a` (compressed rows, sorted `b`
/// indices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedPairs {
    records_b: usize,
    offsets: Vec<usize>,
    targets: Vec<u32>,
}

impl BlockedPairs {
    /// Number of pairs.
    pub fn pair_count(&self) -> u64 {
        self.targets.len() as u64
    }

    /// Records of `a` the pairs were made for.
    pub fn records_a(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The `b` records paired with record `a`, ascending.
    ///
    /// # Panics
    /// If `a >= self.records_a()`.
    pub fn row(&self, a: usize) -> &[u32] {
        &self.targets[self.offsets[a]..self.offsets[a + 1]]
    }

    /// All pairs `(a, b)`, ordered by `a` then `b`.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.records_a()).flat_map(move |a| self.row(a).iter().map(move |&b| (a, b as usize)))
    }

    /// Pairs completeness, reduction ratio and pairs quality of these pairs against `truth`.
    pub fn quality(&self, truth: &[(usize, usize)]) -> crate::BlockingQuality {
        let pairs: Vec<(usize, usize)> = self.pairs().collect();
        crate::BlockingQuality::measure(&pairs, truth, self.records_a(), self.records_b)
    }

    /// Whether `(a, b)` is one of the pairs.
    pub fn contains(&self, a: usize, b: usize) -> bool {
        a < self.records_a() && self.row(a).binary_search(&(b as u32)).is_ok()
    }

    /// Reduction ratio: the share of all pairs that blocking removed.
    pub fn reduction_ratio(&self) -> f64 {
        let total = self.records_a() as f64 * self.records_b as f64;
        if total == 0.0 {
            0.0
        } else {
            1.0 - self.pair_count() as f64 / total
        }
    }

    pub(crate) fn check_fits(&self, len_a: usize, len_b: usize) -> Result<(), MatchingError> {
        if self.records_a() != len_a || self.records_b != len_b {
            return Err(MatchingError::BlocksMismatch {
                blocked_a: self.records_a(),
                blocked_b: self.records_b,
                len_a,
                len_b,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidates::tests::random_store;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn params(bands: usize, bits_per_band: usize) -> LshParameters {
        LshParameters {
            bands,
            bits_per_band,
        }
    }

    fn check_params(bands: usize, bits: usize, filter_bits: usize, expected: Result<(), &str>) {
        let got = LshBlocker::new(&BlockingKey::new([1; 32]), params(bands, bits), filter_bits)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_string),
            "bands={bands} bits={bits}"
        );
    }

    #[test]
    fn parameters() {
        check_params(1, 1, 64, Ok(()));
        check_params(1024, 64, 64, Ok(()));
        check_params(20, 256, 1024, Ok(()));
        let msg = "lsh blocking needs 1 to 1024 bands and 1 to 64 bits per band (at most the filter length), got bands=2, bits=65";
        check_params(2, 65, 64, Err(msg));
        let msg = "lsh blocking needs 1 to 1024 bands and 1 to 256 bits per band (at most the filter length), got bands=0, bits=8";
        check_params(0, 8, 1024, Err(msg));
        let msg = "lsh blocking needs 1 to 1024 bands and 1 to 256 bits per band (at most the filter length), got bands=1025, bits=8";
        check_params(1025, 8, 1024, Err(msg));
    }

    #[test]
    fn positions_are_distinct_keyed_and_stable() {
        let key = BlockingKey::new([3; 32]);
        let blocker = LshBlocker::new(&key, params(3, 64), 64).unwrap();
        for band in &blocker.positions {
            let mut sorted = band.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..64).collect::<Vec<_>>());
        }
        let other = LshBlocker::new(&BlockingKey::new([4; 32]), params(3, 16), 1024).unwrap();
        let same = LshBlocker::new(&key, params(3, 16), 1024).unwrap();
        assert_ne!(other.positions, same.positions);
        assert_eq!(
            same.positions,
            LshBlocker::new(&key, params(3, 16), 1024)
                .unwrap()
                .positions
        );
        // Golden (checked with Python hmac): the first positions of band 0 for key [3; 32] at
        // 1024 bits. A change here
        // changes every token two parties would exchange: bump the domain tag instead.
        assert_eq!(same.positions[0][..4], GOLDEN_BAND0);
    }

    const GOLDEN_BAND0: [usize; 4] = [168, 658, 223, 166];

    #[test]
    fn tokens_are_band_number_then_sampled_bits() {
        let blocker = LshBlocker::new(&BlockingKey::new([5; 32]), params(2, 10), 64).unwrap();
        let ones = ClkStore::from_bytes(64, &[0xff; 8]).unwrap();
        let zeros = ClkStore::from_bytes(64, &[0; 8]).unwrap();
        assert_eq!(blocker.token(&ones, 0, 1), [0, 0, 0, 1, 0xff, 0xc0]);
        assert_eq!(blocker.token(&zeros, 0, 0), [0, 0, 0, 0, 0, 0]);
        assert_eq!(
            format!("{:?}", BlockingKey::new([9; 32])),
            "BlockingKey(..)"
        );
    }

    #[test]
    fn blocking_keeps_near_duplicates_and_removes_most_pairs() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let a = random_store(&mut rng, 300, 1024);
        // b: copies of a with 2% of bits flipped, then shuffled by reversing.
        let mut b = ClkStore::new(1024).unwrap();
        for i in (0..a.len()).rev() {
            let mut clk = a.to_bytes(i);
            for k in 0..20 {
                let bit = (i * 31 + k * 53) % 1024;
                clk[bit / 8] ^= 0x80 >> (bit % 8);
            }
            b.push(&clk).unwrap();
        }
        let blocker = LshBlocker::new(&BlockingKey::new([6; 32]), params(8, 16), 1024).unwrap();
        let blocked = blocker.block(&a, &b).unwrap();
        let found = (0..300).filter(|&i| blocked.contains(i, 299 - i)).count();
        assert!(found >= 290, "pairs completeness {found}/300");
        let truth: Vec<(usize, usize)> = (0..300).map(|i| (i, 299 - i)).collect();
        let quality = blocked.quality(&truth);
        assert_eq!(quality.true_candidate_pairs, found as u64);
        assert_eq!(quality.candidate_pairs, blocked.pair_count());
        assert_eq!(quality.reduction_ratio(), blocked.reduction_ratio());
        assert_eq!(blocked.pairs().count() as u64, blocked.pair_count());
        assert!(
            blocked.reduction_ratio() > 0.9,
            "reduction ratio {}",
            blocked.reduction_ratio()
        );
        for i in 0..300 {
            assert!(blocked.row(i).windows(2).all(|w| w[0] < w[1]));
        }
    }
}
