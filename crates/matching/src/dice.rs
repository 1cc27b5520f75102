//! Dice similarity: the scalar reference, the kernel choice, and the one formula every kernel
//! shares so that all of them give bit-identical scores.

use crate::store::{ClkStore, Line};

/// The Dice coefficient from counts: `2 |a ∧ b| / (|a| + |b|)`, and 0 when both filters are
/// empty (as anonlink does). Every path of this crate computes scores with this function, so
/// scores are identical whichever kernel counted the bits.
///
/// # Example
/// ```
/// assert_eq!(blindlink_matching::dice_from_counts(3, 4, 4), 0.75);
/// assert_eq!(blindlink_matching::dice_from_counts(0, 0, 0), 0.0);
/// ```
pub fn dice_from_counts(common: u32, popcount_a: u32, popcount_b: u32) -> f64 {
    let total = popcount_a + popcount_b;
    if total == 0 {
        0.0
    } else {
        2.0 * f64::from(common) / f64::from(total)
    }
}

/// The highest Dice score two filters with these popcounts can reach; pruning skips pairs whose
/// bound is below the threshold. Since `common <= min(pa, pb)` and division rounds monotonically,
/// `dice_from_counts(common, pa, pb) <= dice_upper_bound(pa, pb)` holds exactly in floating point,
/// so pruning never drops a pair the full comparison would keep.
pub fn dice_upper_bound(popcount_a: u32, popcount_b: u32) -> f64 {
    dice_from_counts(popcount_a.min(popcount_b), popcount_a, popcount_b)
}

/// Dice similarity of filters `a` of store `sa` and `b` of store `sb`, with the scalar reference.
///
/// # Panics
/// If the stores have different filter lengths or an index is out of range (caller bugs).
///
/// # Example
/// ```
/// use blindlink_matching::{ClkStore, dice};
/// let a = ClkStore::from_bytes(64, &[0xf0, 0, 0, 0, 0, 0, 0, 0])?;
/// let b = ClkStore::from_bytes(64, &[0x30, 0, 0, 0, 0, 0, 0, 0x01])?;
/// assert_eq!(dice(&a, 0, &b, 0), 2.0 * 2.0 / 7.0);
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
pub fn dice(sa: &ClkStore, a: usize, sb: &ClkStore, b: usize) -> f64 {
    assert_eq!(sa.filter_bits(), sb.filter_bits(), "filter lengths differ");
    let common = and_popcount_reference(sa.clk_lines(a), sb.clk_lines(b));
    dice_from_counts(common, sa.popcount(a), sb.popcount(b))
}

/// The scalar reference: popcount of `a AND b`. Every other kernel is tested against it.
pub(crate) fn and_popcount_reference(a: &[Line], b: &[Line]) -> u32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.0.iter().zip(&y.0))
        .map(|(x, y)| (x & y).count_ones())
        .sum()
}

/// Four intersection counts (each at most `MAX_FILTER_BITS` = 2^14) in the 16-bit fields of one
/// word, count `q` in bits `16 q .. 16 q + 16`: the layout the AVX-512 kernel produces for free,
/// and one that lets four threshold tests run as one subtraction (see `candidates`).
pub(crate) fn pack4(counts: [u32; 4]) -> u64 {
    counts
        .iter()
        .enumerate()
        .map(|(q, &c)| u64::from(c) << (16 * q))
        .sum()
}

/// The four counts of a [`pack4`] word.
pub(crate) fn unpack4(packed: u64) -> [u32; 4] {
    std::array::from_fn(|q| (packed >> (16 * q) & 0xffff) as u32)
}

/// Which implementation counts the common bits. All give exactly the same counts (tested);
/// they differ only in speed. [`DiceKernel::detect`] picks the fastest this CPU supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiceKernel {
    /// Plain Rust, any CPU: the reference.
    Portable,
    /// x86-64 scalar `popcnt` instruction.
    Popcnt,
    /// x86-64 AVX2, nibble-table popcount (Muła's method).
    Avx2,
    /// x86-64 AVX-512 with the `VPOPCNTDQ` vector popcount instruction.
    Avx512Vpopcntdq,
}

impl DiceKernel {
    /// Every kernel, slowest first.
    pub const ALL: [DiceKernel; 4] = [
        DiceKernel::Portable,
        DiceKernel::Popcnt,
        DiceKernel::Avx2,
        DiceKernel::Avx512Vpopcntdq,
    ];

    /// The fastest kernel this CPU supports (checked at run time).
    pub fn detect() -> Self {
        if Self::Avx512Vpopcntdq.is_available() {
            Self::Avx512Vpopcntdq
        } else if Self::Avx2.is_available() {
            // The nibble table beats scalar popcnt by about 1.25x (papers/benchmarks.md).
            Self::Avx2
        } else if Self::Popcnt.is_available() {
            Self::Popcnt
        } else {
            Self::Portable
        }
    }

    /// Whether this CPU can run the kernel. An unavailable kernel falls back to
    /// [`DiceKernel::Portable`] when asked to compute.
    pub fn is_available(self) -> bool {
        match self {
            Self::Portable => true,
            Self::Popcnt => crate::simd::popcnt_available(),
            Self::Avx2 => crate::simd::avx2_available(),
            Self::Avx512Vpopcntdq => crate::simd::avx512_vpopcntdq_available(),
        }
    }

    /// Kernels this CPU can run, slowest first.
    pub fn available() -> Vec<Self> {
        Self::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    /// A short stable name (`portable`, `popcnt`, `avx2`, `avx512-vpopcntdq`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Popcnt => "popcnt",
            Self::Avx2 => "avx2",
            Self::Avx512Vpopcntdq => "avx512-vpopcntdq",
        }
    }

    /// Counts `query AND target` for each of the `out.len()` consecutive filters in `targets`.
    pub(crate) fn and_popcounts(
        self,
        query: &[Line],
        targets: &[Line],
        lines_per_clk: usize,
        out: &mut [u32],
    ) {
        debug_assert_eq!(targets.len(), out.len() * lines_per_clk);
        match self {
            Self::Portable => {
                for (count, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
                    *count = and_popcount_reference(query, target);
                }
            }
            Self::Popcnt => crate::simd::popcnt_and_popcounts(query, targets, lines_per_clk, out),
            Self::Avx2 => crate::simd::avx2_and_popcounts(query, targets, lines_per_clk, out),
            Self::Avx512Vpopcntdq => {
                crate::simd::avx512_and_popcounts(query, targets, lines_per_clk, out)
            }
        }
    }

    /// Counts `query[q] AND target` for four queries and each of the `out.len()` consecutive
    /// filters in `targets`, packed by [`pack4`] into `out[j]`: every target is loaded once for
    /// four pairs.
    pub(crate) fn and_popcounts_x4(
        self,
        queries: [&[Line]; 4],
        targets: &[Line],
        lines_per_clk: usize,
        out: &mut [u64],
    ) {
        debug_assert_eq!(targets.len(), out.len() * lines_per_clk);
        match self {
            Self::Portable => {
                for (packed, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
                    *packed = pack4(queries.map(|query| and_popcount_reference(query, target)));
                }
            }
            Self::Popcnt => {
                crate::simd::popcnt_and_popcounts_x4(queries, targets, lines_per_clk, out)
            }
            Self::Avx2 => crate::simd::avx2_and_popcounts_x4(queries, targets, lines_per_clk, out),
            Self::Avx512Vpopcntdq => {
                crate::simd::avx512_and_popcounts_x4(queries, targets, lines_per_clk, out)
            }
        }
    }

    /// Counts `a AND b` for one pair of filters.
    pub(crate) fn and_popcount(self, a: &[Line], b: &[Line]) -> u32 {
        let mut out = [0];
        self.and_popcounts(a, b, a.len(), &mut out);
        out[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(a: &[u8], b: &[u8], expected: f64) {
        let bits = a.len() * 8;
        let sa = ClkStore::from_bytes(bits, a).unwrap();
        let sb = ClkStore::from_bytes(bits, b).unwrap();
        assert_eq!(dice(&sa, 0, &sb, 0), expected, "a={a:?} b={b:?}");
        for kernel in DiceKernel::available() {
            let common = kernel.and_popcount(sa.clk_lines(0), sb.clk_lines(0));
            let got = dice_from_counts(common, sa.popcount(0), sb.popcount(0));
            assert_eq!(got, expected, "kernel {}", kernel.name());
        }
    }

    #[test]
    fn golden_scores() {
        check(&[0; 8], &[0; 8], 0.0);
        check(&[0xff; 8], &[0; 8], 0.0);
        check(&[0xff; 8], &[0xff; 8], 1.0);
        check(
            &[0xf0, 0, 0, 0, 0, 0, 0, 0],
            &[0x30, 0, 0, 0, 0, 0, 0, 1],
            4.0 / 7.0,
        );
        check(&[0xaa; 128], &[0x55; 128], 0.0);
        check(&[0xaa; 128], &[0xff; 128], 2.0 * 512.0 / 1536.0);
        let mut half = [0u8; 256];
        half[..128].fill(0xff);
        check(&half, &[0xff; 256], 2.0 * 1024.0 / 3072.0);
    }

    #[test]
    fn upper_bound_cases() {
        assert_eq!(dice_upper_bound(0, 0), 0.0);
        assert_eq!(dice_upper_bound(10, 10), 1.0);
        assert_eq!(dice_upper_bound(10, 30), 0.5);
        assert_eq!(dice_upper_bound(30, 10), 0.5);
    }

    fn clk_bytes(words: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), words * 8)
    }

    proptest! {
        // Every kernel, every supported shape (1 to 9 lines, odd word counts, padded tails),
        // batch sizes that exercise the 4-wide main loop and the remainder.
        #[test]
        fn kernels_match_the_reference(
            words in 1usize..=70,
            seed in clk_bytes(70),
            count in 1usize..=11,
            data in prop::collection::vec(any::<u8>(), 11 * 70 * 8),
        ) {
            let bits = words * 64;
            let query = ClkStore::from_bytes(bits, &seed[..words * 8]).unwrap();
            let targets = ClkStore::from_bytes(bits, &data[..count * words * 8]).unwrap();
            let lpc = targets.lines_per_clk();
            let expected: Vec<u32> = (0..count)
                .map(|i| and_popcount_reference(query.clk_lines(0), targets.clk_lines(i)))
                .collect();
            // Four queries: the seed and three targets, so the tile sees different filters.
            let queries = [query.clk_lines(0), targets.clk_lines(0), targets.clk_lines(count / 2), targets.clk_lines(count - 1)];
            let expected_x4: Vec<[u32; 4]> = (0..count)
                .map(|i| queries.map(|q| and_popcount_reference(q, targets.clk_lines(i))))
                .collect();
            for kernel in DiceKernel::ALL {
                let mut out = vec![u32::MAX; count];
                kernel.and_popcounts(query.clk_lines(0), targets.range_lines(0..count), lpc, &mut out);
                prop_assert_eq!(&out, &expected, "kernel {}", kernel.name());
                let mut out = vec![u64::MAX; count];
                kernel.and_popcounts_x4(queries, targets.range_lines(0..count), lpc, &mut out);
                let out: Vec<[u32; 4]> = out.into_iter().map(unpack4).collect();
                prop_assert_eq!(&out, &expected_x4, "kernel {} x4", kernel.name());
            }
        }

        #[test]
        fn score_never_exceeds_bound(a in clk_bytes(16), b in clk_bytes(16)) {
            let sa = ClkStore::from_bytes(1024, &a).unwrap();
            let sb = ClkStore::from_bytes(1024, &b).unwrap();
            prop_assert!(dice(&sa, 0, &sb, 0) <= dice_upper_bound(sa.popcount(0), sb.popcount(0)));
        }
    }

    #[test]
    fn dense_filters_at_the_maximum_length() {
        // All bits set at 16,384 bits: the packed 16-bit counters hold the largest possible count.
        let a = ClkStore::from_bytes(16_384, &[0xff; 2048]).unwrap();
        for kernel in DiceKernel::available() {
            let mut out = [0; 5];
            let targets = ClkStore::from_bytes(16_384, &[0xff; 2048 * 5]).unwrap();
            kernel.and_popcounts(a.clk_lines(0), targets.range_lines(0..5), 32, &mut out);
            assert_eq!(out, [16_384; 5], "kernel {}", kernel.name());
            let mut out = [0; 5];
            let q = a.clk_lines(0);
            kernel.and_popcounts_x4([q; 4], targets.range_lines(0..5), 32, &mut out);
            assert_eq!(
                out.map(unpack4),
                [[16_384; 4]; 5],
                "kernel {} x4",
                kernel.name()
            );
        }
    }
}
