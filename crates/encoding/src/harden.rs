//! Hardening: transformations of a finished Bloom filter that make frequency and pattern
//! attacks harder, each named in a schema's ordered `[[harden]]` list.
//!
//! | step | effect | length |
//! |---|---|---|
//! | `xor-fold` | first half XOR second half (Schnell et al. 2016) | halves |
//! | `balance` | append the complement, then a keyed permutation (Berger & Schnell) | doubles; exactly half the bits set |
//! | `salt` | mixes a per-record value (e.g. year of birth) into every token hash | unchanged |
//! | `blip` | flips each bit with probability `1 / (1 + e^ε)`: ε-differential privacy per bit (randomised response, Alaggan et al.) | unchanged |
//! | `rule90` | bit `i` becomes `b[i-1] XOR b[i+1]`, cyclically (Schnell & Borgs 2018) | unchanged |
//! | `permute` | keyed permutation of the bit positions | unchanged |
//!
//! Keyed steps derive their keys from the linkage secret with the step's position in the list,
//! so two parties with the same schema and secret harden identically.
//!
//! BLIP is the exception: its flips are noise, and noise regenerable from the linkage secret is
//! no noise to the other key holder (who XORs the same flips back out; `blindlink-leakage`'s
//! key-holder attack does exactly that). Its flips come from a ChaCha20 stream under a fresh
//! per-encoder seed (the OS RNG, or one the caller passes to
//! [`ClkEncoder::with_blip_seed`](crate::ClkEncoder::with_blip_seed)), with the record index as
//! the stream number, so an encoding run is deterministic whatever the number of threads and
//! two runs never flip the same bits.

use rand_chacha::ChaCha20Rng;
use rand_core::Rng as _;

use crate::bits::{get_bit, set_bit};

/// One hardening step, as configured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HardeningStep {
    /// XOR-fold `times` times.
    XorFold {
        /// Number of folds.
        times: u32,
    },
    /// Append the complement and permute with a keyed permutation.
    Balance,
    /// Salt token hashes with the value of a per-record CSV column.
    Salt {
        /// The CSV column holding the salt.
        column: String,
    },
    /// BLIP randomised response with privacy parameter ε.
    Blip {
        /// ε of the per-bit randomised response.
        epsilon: f64,
    },
    /// Elementary cellular automaton rule 90.
    Rule90,
    /// Keyed permutation of bit positions.
    Permute,
}

/// A step made ready for a known input length (permutation tables precomputed).
#[derive(Debug, Clone)]
pub(crate) enum PreparedStep {
    XorFold,
    Balance(Vec<u32>),
    Blip {
        flip_probability: f64,
        step_index: u64,
    },
    Rule90,
    Permute(Vec<u32>),
}

/// XOR-folds a filter of `bits` bits into `bits / 2` (odd lengths drop the last bit).
pub(crate) fn xor_fold(filter: &[u8], bits: usize) -> Vec<u8> {
    let half = bits / 2;
    let mut out = vec![0u8; half.div_ceil(8)];
    for i in 0..half {
        if get_bit(filter, i) ^ get_bit(filter, i + half) {
            set_bit(&mut out, i);
        }
    }
    out
}

/// `filter ‖ !filter`, permuted: output bit `i` is input bit `permutation[i]` of the doubled
/// filter. Exactly `bits` of the `2 · bits` output bits are set, whatever the input.
pub(crate) fn balance(filter: &[u8], bits: usize, permutation: &[u32]) -> Vec<u8> {
    let mut out = vec![0u8; (2 * bits).div_ceil(8)];
    for (i, &source) in permutation.iter().enumerate() {
        let source = source as usize;
        let bit = if source < bits {
            get_bit(filter, source)
        } else {
            !get_bit(filter, source - bits)
        };
        if bit {
            set_bit(&mut out, i);
        }
    }
    out
}

/// Output bit `i` is input bit `permutation[i]`.
pub(crate) fn permute(filter: &[u8], bits: usize, permutation: &[u32]) -> Vec<u8> {
    let mut out = vec![0u8; bits.div_ceil(8)];
    for (i, &source) in permutation.iter().enumerate() {
        if get_bit(filter, source as usize) {
            set_bit(&mut out, i);
        }
    }
    out
}

/// Rule 90 on a ring: `out[i] = in[i - 1] XOR in[i + 1]`.
pub(crate) fn rule90(filter: &[u8], bits: usize) -> Vec<u8> {
    let mut out = vec![0u8; bits.div_ceil(8)];
    for i in 0..bits {
        let left = get_bit(filter, (i + bits - 1) % bits);
        let right = get_bit(filter, (i + 1) % bits);
        if left ^ right {
            set_bit(&mut out, i);
        }
    }
    out
}

/// Flips each bit independently with probability `flip_probability`, drawing from `rng`.
pub(crate) fn blip(filter: &mut [u8], bits: usize, flip_probability: f64, rng: &mut ChaCha20Rng) {
    for i in 0..bits {
        let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if unit < flip_probability {
            filter[i >> 3] ^= 0x80 >> (i & 7);
        }
    }
}

/// The flip probability of BLIP for a given ε: `1 / (1 + e^ε)`, so that
/// `P(out = b | in = b) / P(out = b | in ≠ b) = e^ε`.
#[must_use]
pub fn blip_flip_probability(epsilon: f64) -> f64 {
    1.0 / (1.0 + epsilon.exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinkageSecret;
    use crate::bits::popcount;
    use crate::keyed::{DerivedKey, KeyedStream};
    use rand_core::SeedableRng as _;

    fn stream(nonce: u64) -> KeyedStream {
        let secret = LinkageSecret::from_bytes(b"harden".to_vec()).unwrap();
        KeyedStream::new(&DerivedKey::derive(&secret, "test", b""), nonce)
    }

    fn filter(bits: usize, seed: u64) -> Vec<u8> {
        let mut s = stream(seed);
        let mut f = vec![0u8; bits.div_ceil(8)];
        for i in 0..bits {
            if s.below(3) == 0 {
                set_bit(&mut f, i);
            }
        }
        f
    }

    #[test]
    fn xor_fold_defining_property() {
        let bits = 1000;
        let f = filter(bits, 1);
        let folded = xor_fold(&f, bits);
        for i in 0..bits / 2 {
            assert_eq!(
                get_bit(&folded, i),
                get_bit(&f, i) ^ get_bit(&f, i + bits / 2)
            );
        }
    }

    #[test]
    fn balance_sets_exactly_half_the_bits() {
        for (bits, seed) in [(64, 1), (1000, 2), (1001, 3)] {
            let f = filter(bits, seed);
            let perm = stream(9).permutation(2 * bits);
            let balanced = balance(&f, bits, &perm);
            assert_eq!(popcount(&balanced) as usize, bits);
            // The all-zero and all-one filters are balanced too.
            assert_eq!(
                popcount(&balance(&vec![0; bits.div_ceil(8)], bits, &perm)) as usize,
                bits
            );
        }
    }

    #[test]
    fn rule90_defining_property() {
        let bits = 333;
        let f = filter(bits, 4);
        let out = rule90(&f, bits);
        for i in 0..bits {
            let expected = get_bit(&f, (i + bits - 1) % bits) ^ get_bit(&f, (i + 1) % bits);
            assert_eq!(get_bit(&out, i), expected, "bit {i}");
        }
    }

    #[test]
    fn permute_preserves_popcount_and_moves_bits() {
        let bits = 512;
        let f = filter(bits, 5);
        let perm = stream(11).permutation(bits);
        let out = permute(&f, bits, &perm);
        assert_eq!(popcount(&out), popcount(&f));
        for (i, &p) in perm.iter().enumerate() {
            assert_eq!(get_bit(&out, i), get_bit(&f, p as usize));
        }
    }

    #[test]
    fn blip_flips_at_the_stated_rate() {
        // ε = ln 3 gives p = 1/4; 200,000 bits put the observed rate within ±0.005 of it
        // with overwhelming probability, and the stream is deterministic anyway.
        let epsilon = 3f64.ln();
        let p = blip_flip_probability(epsilon);
        assert!((p - 0.25).abs() < 1e-12);
        let bits = 200_000;
        let original = filter(bits, 6);
        let mut noisy = original.clone();
        blip(&mut noisy, bits, p, &mut ChaCha20Rng::seed_from_u64(12));
        let flipped: u32 = original
            .iter()
            .zip(&noisy)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        let rate = f64::from(flipped) / bits as f64;
        assert!((rate - 0.25).abs() < 0.005, "flip rate {rate}");
    }
}
