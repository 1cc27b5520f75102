//! SIMD kernels for counting the common bits of two filters: the only module of this crate with
//! `unsafe` code.
//!
//! Each kernel is a `#[target_feature]` function; its safe wrapper checks at run time that the CPU
//! has the feature (`is_x86_feature_detected!` caches the answer, so the check is one load per
//! batch) and otherwise falls back to the portable reference. That check is what makes the
//! `unsafe` calls sound. The only other `unsafe` operations are loads through pointers taken from
//! `&Line` references, which are valid, 64-byte aligned (the `Line` type guarantees it) and
//! 64 bytes long.
//!
//! Every kernel is tested to return exactly the reference's counts (`dice::tests`).
#![allow(unsafe_code)]

use crate::dice::{and_popcount_reference, pack4};
use crate::store::Line;

fn portable(query: &[Line], targets: &[Line], lines_per_clk: usize, out: &mut [u32]) {
    for (count, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
        *count = and_popcount_reference(query, target);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn popcnt_available() -> bool {
    std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512_vpopcntdq_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn popcnt_available() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn avx2_available() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn avx512_vpopcntdq_available() -> bool {
    false
}

/// Scalar hardware `popcnt` on 64-bit words.
pub(crate) fn popcnt_and_popcounts(
    query: &[Line],
    targets: &[Line],
    lines_per_clk: usize,
    out: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if popcnt_available() {
        // SAFETY: the CPU supports popcnt (checked just above).
        unsafe { x86::popcnt(query, targets, lines_per_clk, out) };
        return;
    }
    portable(query, targets, lines_per_clk, out);
}

/// AVX2 nibble-table popcount.
pub(crate) fn avx2_and_popcounts(
    query: &[Line],
    targets: &[Line],
    lines_per_clk: usize,
    out: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { x86::avx2(query, targets, lines_per_clk, out) };
        return;
    }
    portable(query, targets, lines_per_clk, out);
}

/// AVX-512 `VPOPCNTDQ`.
pub(crate) fn avx512_and_popcounts(
    query: &[Line],
    targets: &[Line],
    lines_per_clk: usize,
    out: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if avx512_vpopcntdq_available() {
        // SAFETY: the CPU supports AVX-512F and VPOPCNTDQ (checked just above).
        unsafe {
            match lines_per_clk {
                1 => x86::avx512::<1>(query, targets, out),
                2 => x86::avx512::<2>(query, targets, out),
                4 => x86::avx512::<4>(query, targets, out),
                _ => x86::avx512_any(query, targets, lines_per_clk, out),
            }
        }
        return;
    }
    portable(query, targets, lines_per_clk, out);
}

fn portable_x4(queries: [&[Line]; 4], targets: &[Line], lines_per_clk: usize, out: &mut [u64]) {
    for (packed, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
        *packed = pack4(queries.map(|query| and_popcount_reference(query, target)));
    }
}

/// Scalar hardware `popcnt`, four queries per target.
pub(crate) fn popcnt_and_popcounts_x4(
    queries: [&[Line]; 4],
    targets: &[Line],
    lines_per_clk: usize,
    out: &mut [u64],
) {
    #[cfg(target_arch = "x86_64")]
    if popcnt_available() {
        // SAFETY: the CPU supports popcnt (checked just above).
        unsafe { x86::popcnt_x4(queries, targets, lines_per_clk, out) };
        return;
    }
    portable_x4(queries, targets, lines_per_clk, out);
}

/// AVX2, four queries per target.
pub(crate) fn avx2_and_popcounts_x4(
    queries: [&[Line]; 4],
    targets: &[Line],
    lines_per_clk: usize,
    out: &mut [u64],
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { x86::avx2_x4(queries, targets, lines_per_clk, out) };
        return;
    }
    portable_x4(queries, targets, lines_per_clk, out);
}

/// AVX-512 `VPOPCNTDQ`, four queries per target.
pub(crate) fn avx512_and_popcounts_x4(
    queries: [&[Line]; 4],
    targets: &[Line],
    lines_per_clk: usize,
    out: &mut [u64],
) {
    #[cfg(target_arch = "x86_64")]
    if avx512_vpopcntdq_available() {
        // SAFETY: the CPU supports AVX-512F and VPOPCNTDQ (checked just above).
        unsafe {
            match lines_per_clk {
                1 => x86::avx512_x4::<1>(queries, targets, out),
                2 => x86::avx512_x4::<2>(queries, targets, out),
                4 => x86::avx512_x4::<4>(queries, targets, out),
                _ => x86::avx512_x4_any(queries, targets, lines_per_clk, out),
            }
        }
        return;
    }
    portable_x4(queries, targets, lines_per_clk, out);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::store::Line;

    #[target_feature(enable = "popcnt")]
    pub(super) fn popcnt(query: &[Line], targets: &[Line], lines_per_clk: usize, out: &mut [u32]) {
        for (count, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
            let mut total = 0u32;
            for (q, t) in query.iter().zip(target) {
                for (x, y) in q.0.iter().zip(&t.0) {
                    total += (x & y).count_ones();
                }
            }
            *count = total;
        }
    }

    #[target_feature(enable = "popcnt")]
    pub(super) fn popcnt_x4(
        queries: [&[Line]; 4],
        targets: &[Line],
        lines_per_clk: usize,
        out: &mut [u64],
    ) {
        for (counts, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
            let mut totals = [0u32; 4];
            for (l, t) in target.iter().enumerate() {
                for (w, y) in t.0.iter().enumerate() {
                    for (total, query) in totals.iter_mut().zip(&queries) {
                        *total += (query[l].0[w] & y).count_ones();
                    }
                }
            }
            *counts = crate::dice::pack4(totals);
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn avx2_x4(
        queries: [&[Line]; 4],
        targets: &[Line],
        lines_per_clk: usize,
        out: &mut [u64],
    ) {
        for (packed, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
            let mut counts = [0u32; 4];
            for (count, query) in counts.iter_mut().zip(&queries) {
                avx2(query, target, lines_per_clk, std::slice::from_mut(count));
            }
            *packed = crate::dice::pack4(counts);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn load256(line: &Line, half: usize) -> __m256i {
        // SAFETY: `line` is 64 bytes, 64-byte aligned; half 0 or 1 selects an aligned 32-byte
        // half inside it.
        unsafe { _mm256_load_si256(line.0.as_ptr().add(4 * (half & 1)).cast()) }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn avx2(query: &[Line], targets: &[Line], lines_per_clk: usize, out: &mut [u32]) {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low_nibbles = _mm256_set1_epi8(0x0f);
        for (count, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
            let mut sums = _mm256_setzero_si256();
            for (q, t) in query.iter().zip(target) {
                // Byte counts of one line are at most 16, so adding both halves cannot overflow.
                let mut bytes = _mm256_setzero_si256();
                for half in 0..2 {
                    let v = _mm256_and_si256(load256(q, half), load256(t, half));
                    let lo = _mm256_and_si256(v, low_nibbles);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low_nibbles);
                    bytes = _mm256_add_epi8(bytes, _mm256_shuffle_epi8(table, lo));
                    bytes = _mm256_add_epi8(bytes, _mm256_shuffle_epi8(table, hi));
                }
                sums = _mm256_add_epi64(sums, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
            }
            let halves = _mm_add_epi64(
                _mm256_castsi256_si128(sums),
                _mm256_extracti128_si256::<1>(sums),
            );
            let total = _mm_cvtsi128_si64(halves) + _mm_extract_epi64::<1>(halves);
            *count = total as u32;
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load512(line: &Line) -> __m512i {
        // SAFETY: `line` is 64 bytes, 64-byte aligned.
        unsafe { _mm512_load_si512(line.0.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    fn common_lanes(query: &[Line], target: &[Line]) -> __m512i {
        let mut acc = _mm512_setzero_si512();
        for (q, t) in query.iter().zip(target) {
            acc = _mm512_add_epi64(
                acc,
                _mm512_popcnt_epi64(_mm512_and_si512(load512(q), load512(t))),
            );
        }
        acc
    }

    /// Filters of `L` lines. Four targets are compared per step and their lane counts packed
    /// into 16-bit fields of one vector, so one horizontal sum serves four pairs; a count is at
    /// most `MAX_FILTER_BITS` = 16,384 < 2^16, so the fields never carry into each other.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) fn avx512<const L: usize>(query: &[Line], targets: &[Line], out: &mut [u32]) {
        let query: &[Line; L] = query.try_into().expect("query of L lines");
        let mut quads = targets.chunks_exact(4 * L);
        let mut outs = out.chunks_exact_mut(4);
        for (quad, out) in (&mut quads).zip(&mut outs) {
            let mut packed = _mm512_setzero_si512();
            for (j, target) in quad.chunks_exact(L).enumerate() {
                let lanes = common_lanes(query, target);
                packed = _mm512_or_si512(packed, shift_field(lanes, j));
            }
            unpack(_mm512_reduce_add_epi64(packed) as u64, out);
        }
        for (count, target) in outs
            .into_remainder()
            .iter_mut()
            .zip(quads.remainder().chunks_exact(L))
        {
            *count = _mm512_reduce_add_epi64(common_lanes(query, target)) as u32;
        }
    }

    /// Any number of lines.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) fn avx512_any(
        query: &[Line],
        targets: &[Line],
        lines_per_clk: usize,
        out: &mut [u32],
    ) {
        let mut quads = targets.chunks_exact(4 * lines_per_clk);
        let mut outs = out.chunks_exact_mut(4);
        for (quad, out) in (&mut quads).zip(&mut outs) {
            let mut packed = _mm512_setzero_si512();
            for (j, target) in quad.chunks_exact(lines_per_clk).enumerate() {
                packed = _mm512_or_si512(packed, shift_field(common_lanes(query, target), j));
            }
            unpack(_mm512_reduce_add_epi64(packed) as u64, out);
        }
        for (count, target) in outs
            .into_remainder()
            .iter_mut()
            .zip(quads.remainder().chunks_exact(lines_per_clk))
        {
            *count = _mm512_reduce_add_epi64(common_lanes(query, target)) as u32;
        }
    }

    /// Four queries of `L` lines against each target: the target is loaded once, the four
    /// lane counts are packed into the 16-bit fields of one vector (see [`avx512`]) and one
    /// horizontal sum yields all four counts, already in the packed output format.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) fn avx512_x4<const L: usize>(
        queries: [&[Line]; 4],
        targets: &[Line],
        out: &mut [u64],
    ) {
        let mut q = [[_mm512_setzero_si512(); L]; 4];
        for (regs, query) in q.iter_mut().zip(queries) {
            for (reg, line) in regs.iter_mut().zip(query) {
                *reg = load512(line);
            }
        }
        for (counts, target) in out.iter_mut().zip(targets.chunks_exact(L)) {
            let mut lanes = [_mm512_setzero_si512(); 4];
            for (l, line) in target.iter().enumerate() {
                let t = load512(line);
                for (acc, regs) in lanes.iter_mut().zip(&q) {
                    *acc =
                        _mm512_add_epi64(*acc, _mm512_popcnt_epi64(_mm512_and_si512(regs[l], t)));
                }
            }
            let packed = _mm512_or_si512(
                _mm512_or_si512(lanes[0], _mm512_slli_epi64::<16>(lanes[1])),
                _mm512_or_si512(
                    _mm512_slli_epi64::<32>(lanes[2]),
                    _mm512_slli_epi64::<48>(lanes[3]),
                ),
            );
            *counts = _mm512_reduce_add_epi64(packed) as u64;
        }
    }

    /// Four queries of any number of lines.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) fn avx512_x4_any(
        queries: [&[Line]; 4],
        targets: &[Line],
        lines_per_clk: usize,
        out: &mut [u64],
    ) {
        for (counts, target) in out.iter_mut().zip(targets.chunks_exact(lines_per_clk)) {
            let mut packed = _mm512_setzero_si512();
            for (j, query) in queries.iter().enumerate() {
                packed = _mm512_or_si512(packed, shift_field(common_lanes(query, target), j));
            }
            *counts = _mm512_reduce_add_epi64(packed) as u64;
        }
    }

    /// Moves per-lane counts (each below 2^16 / 8) into 16-bit field `j` of their lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn shift_field(lanes: __m512i, j: usize) -> __m512i {
        match j {
            0 => lanes,
            1 => _mm512_slli_epi64::<16>(lanes),
            2 => _mm512_slli_epi64::<32>(lanes),
            _ => _mm512_slli_epi64::<48>(lanes),
        }
    }

    #[inline]
    fn unpack(sum: u64, out: &mut [u32]) {
        for (j, count) in out.iter_mut().enumerate() {
            *count = (sum >> (16 * j) & 0xffff) as u32;
        }
    }
}
