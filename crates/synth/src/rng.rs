//! Counter-based randomness: every random stream is derived from `(seed, domain, index)` by a
//! fixed mixing function, so person `i` (or block `b`) comes out the same whatever was generated
//! before it and however the work is split across threads.
//!
//! The generator is SplitMix64 (Steele, Lea and Flood, 2014): fast, statistically good for
//! simulation, and *not* cryptographic — synthetic data needs reproducibility, not secrecy.

/// The 64-bit finaliser of SplitMix64: a bijection on `u64` with good avalanche.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Names the purpose of a stream so that streams of different purposes never coincide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    /// Household layout and persons of one block.
    Block = 1,
    /// Membership and outcome decisions of one person.
    Person = 2,
    /// Corruption of one person's record in the first output file.
    CorruptFirst = 3,
    /// Corruption of one person's record in the second output file.
    CorruptSecond = 4,
    /// Row order within one block.
    Shuffle = 5,
    /// Keys of the identifier permutations.
    Keys = 6,
}

/// A SplitMix64 stream seeded from `(seed, domain, index)`.
#[derive(Debug, Clone)]
pub(crate) struct StreamRng {
    state: u64,
}

impl StreamRng {
    /// The stream for `index` in `domain` under `seed`.
    pub(crate) fn new(seed: u64, domain: Domain, index: u64) -> Self {
        let state = mix64(seed ^ mix64((domain as u64).wrapping_mul(GOLDEN_GAMMA)))
            ^ mix64(index.wrapping_add(GOLDEN_GAMMA));
        Self { state }
    }

    /// The next 64 uniformly distributed bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), by Lemire's multiply-shift (bias below
    /// 2^-32 for the bounds used here, irrelevant for simulation).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform index into a slice of length `len > 0`.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A uniform integer in `low..=high`.
    pub(crate) fn range(&mut self, low: u32, high: u32) -> u32 {
        low + self.below(u64::from(high - low) + 1) as u32
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A bijection on `0..domain` keyed by a seed: a balanced four-round Feistel network over the
/// smallest even number of bits covering the domain, with cycle walking back into the domain.
/// Used for unique identifiers without a set of issued numbers in memory. (Four rounds scramble
/// well enough for synthetic identifiers; this is not a cipher.)
#[derive(Debug, Clone)]
pub(crate) struct IndexPermutation {
    domain: u64,
    half_bits: u32,
    round_keys: [u64; 4],
}

impl IndexPermutation {
    pub(crate) fn new(seed: u64, purpose: u64, domain: u64) -> Self {
        let bits = 64 - (domain - 1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut rng = StreamRng::new(seed, Domain::Keys, purpose);
        let round_keys = std::array::from_fn(|_| rng.next_u64());
        Self {
            domain,
            half_bits,
            round_keys,
        }
    }

    fn round_trip(&self, value: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (value >> self.half_bits, value & mask);
        for key in self.round_keys {
            let next = left ^ (mix64(right ^ key) & mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }

    /// The image of `index` (which must be below the domain).
    pub(crate) fn apply(&self, index: u64) -> u64 {
        let mut value = self.round_trip(index);
        // Cycle walking: the Feistel domain is at most 4x larger, so this ends quickly and
        // stays a bijection on 0..domain.
        while value >= self.domain {
            value = self.round_trip(value);
        }
        value
    }
}

/// A table of cumulative integer weights for weighted choice by binary search.
#[derive(Debug, Clone, Default)]
pub(crate) struct WeightedIndex {
    cumulative: Vec<u64>,
}

impl WeightedIndex {
    pub(crate) fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Self { cumulative }
    }

    /// An index drawn with probability proportional to its weight.
    pub(crate) fn sample(&self, rng: &mut StreamRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let point = rng.below(total.max(1));
        self.cumulative.partition_point(|&c| c <= point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| StreamRng::new(7, Domain::Person, 3))
            .map(|mut r| r.next_u64())
            .collect();
        assert!(a.iter().all(|&x| x == a[0]));
        let other = StreamRng::new(7, Domain::Person, 4).next_u64();
        let other_domain = StreamRng::new(7, Domain::Block, 3).next_u64();
        let other_seed = StreamRng::new(8, Domain::Person, 3).next_u64();
        assert_ne!(a[0], other);
        assert_ne!(a[0], other_domain);
        assert_ne!(a[0], other_seed);
    }

    #[test]
    fn permutation_is_a_bijection() {
        for domain in [1u64, 2, 3, 10, 97, 1000, 4096] {
            let perm = IndexPermutation::new(11, 1, domain);
            let mut seen = vec![false; domain as usize];
            for i in 0..domain {
                let image = perm.apply(i);
                assert!(image < domain, "{image} outside 0..{domain}");
                assert!(!seen[image as usize], "{image} hit twice in 0..{domain}");
                seen[image as usize] = true;
            }
        }
    }

    #[test]
    fn weighted_index_follows_weights() {
        let table = WeightedIndex::new([1, 0, 3]);
        let mut rng = StreamRng::new(1, Domain::Block, 0);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let ratio = f64::from(counts[2]) / f64::from(counts[0]);
        assert!((2.8..3.2).contains(&ratio), "ratio {ratio}");
    }

    proptest::proptest! {
        #[test]
        fn permutation_stays_in_domain_and_is_injective(
            seed: u64,
            domain in 1u64..1_000_000_000_000,
            start in 0u64..1_000_000_000_000,
        ) {
            let perm = IndexPermutation::new(seed, 9, domain);
            let first = start % domain;
            let images: Vec<u64> = (first..(first + 64).min(domain)).map(|i| perm.apply(i)).collect();
            let distinct: std::collections::HashSet<&u64> = images.iter().collect();
            proptest::prop_assert_eq!(distinct.len(), images.len());
            proptest::prop_assert!(images.iter().all(|&v| v < domain));
        }
    }
}
