//! Candidate generation: every pair of filters whose Dice similarity reaches a threshold
//! (optionally only the best `k` per record of `a`), across all cores, streamed in bounded
//! batches.
//!
//! Filters of `b` are sorted by popcount once. For a record of `a` with popcount `pa`, the pairs
//! that can reach threshold `t` have popcounts in one interval (the Dice upper bound
//! `2 min(pa, pb) / (pa + pb)` rises up to `pb = pa` and falls after it), found by binary search:
//! the kernel then runs over one contiguous slice of the store, and everything outside is
//! pruned without being touched.

use std::ops::{ControlFlow, Range};

use rayon::prelude::*;

use crate::blocking::BlockedPairs;
use crate::dice::{DiceKernel, dice_from_counts, dice_upper_bound, pack4, unpack4};
use crate::{ClkStore, MatchingError};

/// Rows of `a` handed to the sink at once: bounds memory to one batch of candidates.
const ROWS_PER_BATCH: usize = 4096;
/// Rows of `a` compared together with each target (the kernels' four-query tiles).
const ROWS_PER_TILE: usize = 4;
/// A need no count reaches: counts are at most `MAX_FILTER_BITS` = 2^14 < 2^15 - 1.
const NEVER: u32 = 0x7fff;

/// The smallest intersection count for which filters of popcounts `pa` and `pb` reach `t`
/// (`u32::MAX` if none does). The score rises with the count (division rounds monotonically),
/// so `common >= min_common(pa, pb, t)` is exactly `dice_from_counts(common, pa, pb) >= t`.
fn min_common(pa: u32, pb: u32, t: f64) -> u32 {
    let max = pa.min(pb);
    let mut c = ((t * f64::from(pa + pb) / 2.0).ceil() as u32).min(max + 1);
    while c > 0 && dice_from_counts(c - 1, pa, pb) >= t {
        c -= 1;
    }
    while c <= max && dice_from_counts(c, pa, pb) < t {
        c += 1;
    }
    if c > max { u32::MAX } else { c }
}

/// A Dice similarity threshold in (0, 1]; pairs scoring at least this much are candidates
/// (`>=`, as anonlink).
///
/// # Example
/// ```
/// use blindlink_matching::DiceThreshold;
/// assert_eq!(DiceThreshold::new(0.8)?.value(), 0.8);
/// assert_eq!(DiceThreshold::new(1.5).unwrap_err().to_string(), "dice threshold 1.5 is not in (0, 1]");
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct DiceThreshold(f64);

impl DiceThreshold {
    /// A threshold.
    ///
    /// # Errors
    /// [`MatchingError::InvalidThreshold`] unless `0 < value <= 1`.
    pub fn new(value: f64) -> Result<Self, MatchingError> {
        if value > 0.0 && value <= 1.0 {
            Ok(Self(value))
        } else {
            Err(MatchingError::InvalidThreshold { value })
        }
    }

    /// The threshold as a number.
    pub fn value(self) -> f64 {
        self.0
    }
}

/// A pair of records, by 0-based index into data sets `a` and `b`, and its Dice similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Index of the record in data set `a`.
    pub a: usize,
    /// Index of the record in data set `b`.
    pub b: usize,
    /// Dice similarity in [0, 1].
    pub score: f64,
}

/// What a candidate search did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Records in data set `a`.
    pub records_a: usize,
    /// Records in data set `b`.
    pub records_b: usize,
    /// Pairs the search was allowed to consider: all pairs, or the blocked pairs.
    pub considered_pairs: u64,
    /// Pairs whose filters were actually compared (the rest were pruned by popcount).
    pub comparisons: u64,
    /// Candidates reported.
    pub candidates: u64,
}

impl SearchStats {
    /// `|a| * |b|`.
    pub fn total_pairs(&self) -> u64 {
        self.records_a as u64 * self.records_b as u64
    }

    fn add(&mut self, comparisons: u64, candidates: u64) {
        self.comparisons += comparisons;
        self.candidates += candidates;
    }
}

/// How to search: threshold, optional top-k, pruning and kernel.
///
/// # Example
/// ```
/// use blindlink_matching::{CandidateSearch, ClkStore, DiceThreshold};
/// let a = ClkStore::from_bytes(64, &[0xff, 0xff, 0, 0, 0, 0, 0, 0])?;
/// let b = ClkStore::from_bytes(64, &[0xff, 0xfe, 0, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 0, 0, 0xff, 0xff])?;
/// let (pairs, stats) = CandidateSearch::new(DiceThreshold::new(0.9)?).collect(&a, &b)?;
/// assert_eq!(pairs.len(), 1);
/// assert_eq!((pairs[0].a, pairs[0].b, pairs[0].score), (0, 0, 30.0 / 31.0));
/// assert_eq!(stats.comparisons, 2);
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CandidateSearch {
    threshold: DiceThreshold,
    top_k: Option<usize>,
    prune: bool,
    kernel: DiceKernel,
}

impl CandidateSearch {
    /// All pairs at or above `threshold`, with pruning and the fastest kernel of this CPU.
    pub fn new(threshold: DiceThreshold) -> Self {
        Self {
            threshold,
            top_k: None,
            prune: true,
            kernel: DiceKernel::detect(),
        }
    }

    /// Keeps only the `k` best candidates of each record of `a` (ties: lower `b` index first).
    /// Unlike anonlink's `k`, which also caps each record of `b` while walking all candidates in
    /// score order, this is a per-row limit, so it streams: rows never wait for each other.
    ///
    /// # Errors
    /// [`MatchingError::ZeroTopK`] for `k = 0`.
    pub fn top_k(mut self, k: usize) -> Result<Self, MatchingError> {
        if k == 0 {
            return Err(MatchingError::ZeroTopK);
        }
        self.top_k = Some(k);
        Ok(self)
    }

    /// Whether to skip pairs whose popcounts cannot reach the threshold (default on; the result
    /// is the same either way, only the work differs).
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    /// Which kernel counts bits (default: [`DiceKernel::detect`]).
    pub fn kernel(mut self, kernel: DiceKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Runs the search over all pairs and returns every candidate, ordered by `a` then `b`.
    ///
    /// # Errors
    /// [`MatchingError::MismatchedFilterLengths`] when the stores differ in filter length.
    pub fn collect(
        &self,
        a: &ClkStore,
        b: &ClkStore,
    ) -> Result<(Vec<Candidate>, SearchStats), MatchingError> {
        let mut all = Vec::new();
        let stats = self.stream(a, b, |batch| {
            all.extend_from_slice(batch);
            ControlFlow::Continue(())
        })?;
        Ok((all, stats))
    }

    /// Runs the search over all pairs and hands candidates to `sink` in batches, ordered by `a`
    /// then `b`; memory stays bounded by one batch whatever the data set sizes. The sink may
    /// stop the search early by returning [`ControlFlow::Break`].
    ///
    /// # Errors
    /// [`MatchingError::MismatchedFilterLengths`] when the stores differ in filter length.
    pub fn stream(
        &self,
        a: &ClkStore,
        b: &ClkStore,
        mut sink: impl FnMut(&[Candidate]) -> ControlFlow<()>,
    ) -> Result<SearchStats, MatchingError> {
        check_lengths(a, b)?;
        let targets = SortedTargets::new(b);
        let mut stats = SearchStats {
            records_a: a.len(),
            records_b: b.len(),
            considered_pairs: a.len() as u64 * b.len() as u64,
            ..SearchStats::default()
        };
        let mut batch_start = 0;
        while batch_start < a.len() {
            let batch = batch_start..(batch_start + ROWS_PER_BATCH).min(a.len());
            batch_start = batch.end;
            // Rows of similar popcount share a tile: their admissible slices of `b` nearly
            // coincide, so one pass over the slice serves four rows.
            let mut rows: Vec<usize> = batch.collect();
            rows.sort_unstable_by_key(|&row| (a.popcount(row), row));
            let needs = NeedTable::new(&rows, a, &targets, self.threshold.value());
            let results: Vec<(u64, Vec<Candidate>)> = rows
                .par_chunks(ROWS_PER_TILE)
                .with_min_len(2)
                .map_init(Vec::new, |counts, tile| {
                    self.tile(a, tile, &targets, &needs, counts)
                })
                .collect();
            let mut flat = Vec::new();
            for (comparisons, found) in results {
                stats.add(comparisons, found.len() as u64);
                flat.extend(found);
            }
            flat.sort_unstable_by_key(|c| (c.a, c.b));
            if sink(&flat).is_break() {
                break;
            }
        }
        Ok(stats)
    }

    /// As [`CandidateSearch::stream`], but only over the pairs that `blocks` lets through.
    ///
    /// # Errors
    /// [`MatchingError::MismatchedFilterLengths`]; [`MatchingError::BlocksMismatch`] when
    /// `blocks` was made for other data sets.
    pub fn stream_blocked(
        &self,
        a: &ClkStore,
        b: &ClkStore,
        blocks: &BlockedPairs,
        mut sink: impl FnMut(&[Candidate]) -> ControlFlow<()>,
    ) -> Result<SearchStats, MatchingError> {
        check_lengths(a, b)?;
        blocks.check_fits(a.len(), b.len())?;
        let mut stats = SearchStats {
            records_a: a.len(),
            records_b: b.len(),
            considered_pairs: blocks.pair_count(),
            ..SearchStats::default()
        };
        self.run_batches(a.len(), &mut stats, &mut sink, |row, _, found| {
            self.blocked_row(a, b, row, blocks.row(row), found)
        });
        Ok(stats)
    }

    /// Drives `row_search` over all rows of `a`, a batch at a time, in parallel within a batch,
    /// and feeds the batches to the sink in order.
    fn run_batches(
        &self,
        rows: usize,
        stats: &mut SearchStats,
        sink: &mut impl FnMut(&[Candidate]) -> ControlFlow<()>,
        row_search: impl Fn(usize, &mut Vec<u32>, &mut Vec<Candidate>) -> u64 + Sync,
    ) {
        let mut batch_start = 0;
        while batch_start < rows {
            let batch = batch_start..(batch_start + ROWS_PER_BATCH).min(rows);
            batch_start = batch.end;
            let results: Vec<(u64, Vec<Candidate>)> = batch
                .into_par_iter()
                .with_min_len(8)
                .map_init(Vec::new, |counts, row| {
                    let mut found = Vec::new();
                    let comparisons = row_search(row, counts, &mut found);
                    self.finish_row(&mut found);
                    (comparisons, found)
                })
                .collect();
            let mut flat = Vec::new();
            for (comparisons, found) in results {
                stats.add(comparisons, found.len() as u64);
                flat.extend(found);
            }
            if sink(&flat).is_break() {
                return;
            }
        }
    }

    /// Compares up to [`ROWS_PER_TILE`] rows of `a` with the union of their admissible slices
    /// of the sorted targets; returns the comparisons made and the rows' candidates.
    fn tile(
        &self,
        a: &ClkStore,
        rows: &[usize],
        targets: &SortedTargets,
        needs: &NeedTable,
        counts: &mut Vec<u64>,
    ) -> (u64, Vec<Candidate>) {
        let t = self.threshold.value();
        let store = &targets.store;
        let ranges: Vec<Range<usize>> = rows
            .iter()
            .map(|&row| {
                if self.prune {
                    targets.admissible(a.popcount(row), t)
                } else {
                    0..store.len()
                }
            })
            .collect();
        let Some(start) = ranges
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.start)
            .min()
        else {
            return (0, Vec::new());
        };
        let end = ranges.iter().map(|r| r.end).max().unwrap_or(start);
        // A short last tile repeats its last row; the repeats' counts are ignored.
        let queries: [&[crate::store::Line]; ROWS_PER_TILE] =
            std::array::from_fn(|q| a.clk_lines(rows[q.min(rows.len() - 1)]));
        if counts.len() < end - start {
            counts.resize(end - start, 0);
        }
        let counts = &mut counts[..end - start];
        self.kernel.and_popcounts_x4(
            queries,
            store.range_lines(start..end),
            store.lines_per_clk(),
            counts,
        );
        let popcounts: [u32; ROWS_PER_TILE] =
            std::array::from_fn(|q| rows.get(q).map_or(0, |&row| a.popcount(row)));
        let mut found: [Vec<Candidate>; ROWS_PER_TILE] = Default::default();
        // Targets come in runs of equal popcount; within a run, `score >= t` is the integer
        // test `common >= need` for each row, exactly (see `min_common`). With counts and needs
        // below 2^15 in 16-bit fields, `(counts | HIGH) - needs` sets a field's high bit exactly
        // when that count reaches its need, with no borrow between fields: one subtraction
        // tests four pairs, and the rare hits take the slow path.
        const HIGH: u64 = 0x8000_8000_8000_8000;
        let mut j = start;
        while j < end {
            let pb = store.popcount(j);
            let run_end = targets.starts[pb as usize + 1].min(end);
            let need: [u32; ROWS_PER_TILE] = std::array::from_fn(|q| {
                if q < rows.len() {
                    needs.get(popcounts[q], pb).min(NEVER)
                } else {
                    NEVER
                }
            });
            if need != [NEVER; ROWS_PER_TILE] {
                let packed_need = pack4(need);
                let run = &counts[j - start..run_end - start];
                // Eight targets per test: an OR-reduction LLVM vectorises; hits are rare.
                for (chunk_index, chunk) in run.chunks(8).enumerate() {
                    let any = chunk
                        .iter()
                        .fold(0, |acc, &c| acc | ((c | HIGH) - packed_need));
                    if any & HIGH == 0 {
                        continue;
                    }
                    let first = j + chunk_index * 8;
                    for (k, &c) in (first..).zip(chunk) {
                        if ((c | HIGH) - packed_need) & HIGH == 0 {
                            continue;
                        }
                        let c = unpack4(c);
                        for q in 0..rows.len() {
                            if c[q] >= need[q] {
                                found[q].push(Candidate {
                                    a: rows[q],
                                    b: targets.original[k],
                                    score: dice_from_counts(c[q], popcounts[q], pb),
                                });
                            }
                        }
                    }
                }
            }
            j = run_end;
        }
        let mut all = Vec::new();
        for mut row_found in found {
            self.finish_row(&mut row_found);
            all.extend(row_found);
        }
        ((end - start) as u64 * rows.len() as u64, all)
    }

    fn blocked_row(
        &self,
        a: &ClkStore,
        b: &ClkStore,
        row: usize,
        partners: &[u32],
        found: &mut Vec<Candidate>,
    ) -> u64 {
        let pa = a.popcount(row);
        let t = self.threshold.value();
        let mut comparisons = 0;
        for &j in partners {
            let j = j as usize;
            let pb = b.popcount(j);
            if self.prune && dice_upper_bound(pa, pb) < t {
                continue;
            }
            comparisons += 1;
            let common = self.kernel.and_popcount(a.clk_lines(row), b.clk_lines(j));
            let score = dice_from_counts(common, pa, pb);
            if score >= t {
                found.push(Candidate {
                    a: row,
                    b: j,
                    score,
                });
            }
        }
        comparisons
    }

    /// Orders one row's candidates by `b` after keeping its top `k`.
    fn finish_row(&self, found: &mut Vec<Candidate>) {
        if let Some(k) = self.top_k
            && found.len() > k
        {
            found.sort_unstable_by(|x, y| y.score.total_cmp(&x.score).then(x.b.cmp(&y.b)));
            found.truncate(k);
        }
        found.sort_unstable_by_key(|c| c.b);
    }
}

fn check_lengths(a: &ClkStore, b: &ClkStore) -> Result<(), MatchingError> {
    if a.filter_bits() != b.filter_bits() {
        return Err(MatchingError::MismatchedFilterLengths {
            a_bits: a.filter_bits(),
            b_bits: b.filter_bits(),
        });
    }
    Ok(())
}

/// For each popcount `pa` of a batch's rows, `min_common(pa, pb, t)` for every `pb` that can
/// reach the threshold (all others are `u32::MAX`): the per-pair test becomes one comparison.
struct NeedTable {
    /// Distinct popcounts of the batch, ascending, each with the first `pb` of its table.
    keys: Vec<(u32, u32)>,
    tables: Vec<Vec<u32>>,
}

impl NeedTable {
    /// `rows` must be sorted by popcount.
    fn new(rows: &[usize], a: &ClkStore, targets: &SortedTargets, t: f64) -> Self {
        let mut distinct: Vec<u32> = rows.iter().map(|&row| a.popcount(row)).collect();
        distinct.dedup();
        let bits = targets.starts.len() as u32 - 2;
        let (keys, tables) = distinct
            .into_iter()
            .map(|pa| {
                let (lo, hi) = admissible_popcounts(pa, bits, t);
                let table = (lo..hi).map(|pb| min_common(pa, pb, t)).collect();
                ((pa, lo), table)
            })
            .unzip();
        Self { keys, tables }
    }

    fn get(&self, pa: u32, pb: u32) -> u32 {
        let Ok(i) = self.keys.binary_search_by_key(&pa, |&(key, _)| key) else {
            return u32::MAX;
        };
        let lo = self.keys[i].1;
        pb.checked_sub(lo)
            .and_then(|offset| self.tables[i].get(offset as usize))
            .copied()
            .unwrap_or(u32::MAX)
    }
}

/// The popcounts `lo..hi` of filters that can reach `t` with a filter of popcount `pa`: the
/// bound is non-decreasing on `[0, pa]` and non-increasing on `[pa, bits]`, and
/// `bound(pa, pa) = 1 >= t`, so both binary searches have an answer.
fn admissible_popcounts(pa: u32, bits: u32, t: f64) -> (u32, u32) {
    if pa == 0 {
        return (0, 0);
    }
    let lo = first_where(0, pa, |p| dice_upper_bound(pa, p) >= t);
    let hi = first_where(pa, bits + 1, |p| dice_upper_bound(pa, p) < t);
    (lo, hi)
}

/// Data set `b` sorted by popcount, with the index of the first filter of each popcount.
struct SortedTargets {
    store: ClkStore,
    /// `original[j]`: index in `b` of sorted filter `j`.
    original: Vec<usize>,
    /// `starts[p]`: first sorted index with popcount `>= p`, for `p` in `0..=filter_bits + 1`.
    starts: Vec<usize>,
}

impl SortedTargets {
    fn new(b: &ClkStore) -> Self {
        let mut original: Vec<usize> = (0..b.len()).collect();
        original.sort_by_key(|&j| (b.popcount(j), j));
        let store = b.permuted(&original);
        let max = b.filter_bits() + 1;
        let starts = (0..=max)
            .map(|p| store.popcounts().partition_point(|&q| (q as usize) < p))
            .collect();
        Self {
            store,
            original,
            starts,
        }
    }

    /// Sorted indices of the filters whose popcount lets them reach `threshold` with a filter
    /// of popcount `pa`.
    fn admissible(&self, pa: u32, threshold: f64) -> Range<usize> {
        let bits = self.starts.len() as u32 - 2;
        let (lo, hi) = admissible_popcounts(pa, bits, threshold);
        self.starts[lo as usize]..self.starts[hi as usize]
    }
}

/// The smallest `p` in `lo..hi` where `pred` holds (`pred` false then true), or `hi`.
fn first_where(mut lo: u32, mut hi: u32, pred: impl Fn(u32) -> bool) -> u32 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dice::dice;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Filters with varied densities so that pruning has something to prune.
    pub(crate) fn random_store(rng: &mut ChaCha8Rng, n: usize, bits: usize) -> ClkStore {
        let mut store = ClkStore::new(bits).unwrap();
        for _ in 0..n {
            let density = rng.random_range(0.05..0.6);
            let mut clk = vec![0u8; bits / 8];
            for bit in 0..bits {
                if rng.random_bool(density) {
                    clk[bit / 8] |= 0x80 >> (bit % 8);
                }
            }
            store.push(&clk).unwrap();
        }
        store
    }

    fn brute_force(a: &ClkStore, b: &ClkStore, t: f64) -> Vec<Candidate> {
        let mut out = Vec::new();
        for i in 0..a.len() {
            for j in 0..b.len() {
                let score = dice(a, i, b, j);
                if score >= t {
                    out.push(Candidate { a: i, b: j, score });
                }
            }
        }
        out
    }

    fn check_threshold(seed: u64, na: usize, nb: usize, bits: usize, t: f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = random_store(&mut rng, na, bits);
        let b = random_store(&mut rng, nb, bits);
        let expected = brute_force(&a, &b, t);
        for kernel in DiceKernel::ALL {
            for prune in [true, false] {
                let search = CandidateSearch::new(DiceThreshold::new(t).unwrap())
                    .kernel(kernel)
                    .prune(prune);
                let (got, stats) = search.collect(&a, &b).unwrap();
                assert_eq!(got, expected, "kernel {} prune {prune}", kernel.name());
                assert_eq!(stats.candidates, expected.len() as u64);
                if !prune {
                    assert_eq!(stats.comparisons, stats.total_pairs());
                }
            }
        }
    }

    #[test]
    fn threshold_search_equals_brute_force() {
        check_threshold(1, 40, 50, 1024, 0.5);
        check_threshold(2, 40, 50, 1024, 0.3);
        check_threshold(3, 30, 30, 512, 0.2);
        check_threshold(4, 30, 30, 2048, 0.6);
        check_threshold(5, 20, 25, 576, 0.45);
        check_threshold(6, 1, 1, 64, 1.0);
        check_threshold(7, 0, 10, 1024, 0.5);
        check_threshold(8, 10, 0, 1024, 0.5);
    }

    #[test]
    fn blocked_search_equals_brute_force_on_the_blocked_pairs() {
        use crate::{BlockingKey, LshBlocker, LshParameters};
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let a = random_store(&mut rng, 60, 512);
        let b = random_store(&mut rng, 70, 512);
        let params = LshParameters {
            bands: 6,
            bits_per_band: 4,
        };
        let blocked = LshBlocker::new(&BlockingKey::new([2; 32]), params, 512)
            .unwrap()
            .block(&a, &b)
            .unwrap();
        assert!(blocked.pair_count() > 0 && blocked.pair_count() < 60 * 70);
        let expected: Vec<Candidate> = brute_force(&a, &b, 0.3)
            .into_iter()
            .filter(|c| blocked.contains(c.a, c.b))
            .collect();
        for kernel in DiceKernel::ALL {
            for prune in [true, false] {
                let search = CandidateSearch::new(DiceThreshold::new(0.3).unwrap())
                    .kernel(kernel)
                    .prune(prune);
                let mut got = Vec::new();
                let stats = search
                    .stream_blocked(&a, &b, &blocked, |batch| {
                        got.extend_from_slice(batch);
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                assert_eq!(got, expected, "kernel {} prune {prune}", kernel.name());
                assert_eq!(stats.considered_pairs, blocked.pair_count());
            }
        }
        let other = random_store(&mut rng, 5, 512);
        let err = CandidateSearch::new(DiceThreshold::new(0.3).unwrap())
            .stream_blocked(&other, &b, &blocked, |_| ControlFlow::Continue(()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "blocked pairs were made for 60 x 70 records, not 5 x 70"
        );
    }

    #[test]
    fn pruning_skips_most_pairs_and_keeps_every_candidate() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let a = random_store(&mut rng, 200, 1024);
        let b = random_store(&mut rng, 200, 1024);
        let t = DiceThreshold::new(0.8).unwrap();
        let (pruned, with) = CandidateSearch::new(t).collect(&a, &b).unwrap();
        let (full, without) = CandidateSearch::new(t)
            .prune(false)
            .collect(&a, &b)
            .unwrap();
        assert_eq!(pruned, full);
        assert_eq!(without.comparisons, 40_000);
        assert!(
            with.comparisons < 40_000 / 2,
            "{} comparisons",
            with.comparisons
        );
    }

    #[test]
    fn top_k_keeps_the_best_per_row_with_ties_to_the_lower_index() {
        let a = ClkStore::from_bytes(64, &[0xff, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let b = ClkStore::from_bytes(
            64,
            &[
                0xfe, 0, 0, 0, 0, 0, 0, 0, // 14/15
                0xff, 0, 0, 0, 0, 0, 0, 0, // 1
                0xfe, 0, 0, 0, 0, 0, 0, 0, // 14/15
                0xf0, 0, 0, 0, 0, 0, 0, 0, // 8/12
            ],
        )
        .unwrap();
        let search = CandidateSearch::new(DiceThreshold::new(0.5).unwrap());
        let b_of = |k| {
            let (c, _) = search.top_k(k).unwrap().collect(&a, &b).unwrap();
            c.iter().map(|c| c.b).collect::<Vec<_>>()
        };
        assert_eq!(b_of(1), [1]);
        assert_eq!(b_of(2), [0, 1]);
        assert_eq!(b_of(3), [0, 1, 2]);
        assert_eq!(b_of(9), [0, 1, 2, 3]);
        assert_eq!(
            search.top_k(0).unwrap_err().to_string(),
            "top-k must be at least 1"
        );
    }

    #[test]
    fn bad_arguments() {
        for (value, message) in [
            (0.0, "dice threshold 0 is not in (0, 1]"),
            (-0.5, "dice threshold -0.5 is not in (0, 1]"),
            (f64::NAN, "dice threshold NaN is not in (0, 1]"),
        ] {
            assert_eq!(DiceThreshold::new(value).unwrap_err().to_string(), message);
        }
        let a = ClkStore::new(512).unwrap();
        let b = ClkStore::new(1024).unwrap();
        let err = CandidateSearch::new(DiceThreshold::new(0.5).unwrap()).collect(&a, &b);
        assert_eq!(
            err.unwrap_err().to_string(),
            "filter lengths differ: a has 512-bit filters, b has 1024-bit filters"
        );
    }

    #[test]
    fn streaming_in_batches_gives_the_same_candidates_and_can_stop() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let a = random_store(&mut rng, ROWS_PER_BATCH + 100, 128);
        let b = random_store(&mut rng, 20, 128);
        let search = CandidateSearch::new(DiceThreshold::new(0.3).unwrap());
        let mut batches = 0;
        let mut streamed = Vec::new();
        search
            .stream(&a, &b, |batch| {
                batches += 1;
                streamed.extend_from_slice(batch);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(batches, 2);
        assert_eq!(streamed, brute_force(&a, &b, 0.3));
        let mut calls = 0;
        search
            .stream(&a, &b, |_| {
                calls += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(calls, 1);
    }

    proptest! {
        #[test]
        fn min_common_is_exactly_the_threshold_test(pa in 0u32..=1024, pb in 0u32..=1024, t in 0.01f64..=1.0) {
            let need = min_common(pa, pb, t);
            for c in 0..=pa.min(pb) {
                prop_assert_eq!(c >= need, dice_from_counts(c, pa, pb) >= t, "c={}", c);
            }
        }

        #[test]
        fn admissible_range_is_exactly_the_popcounts_that_can_reach_the_threshold(
            pa in 0u32..=256, t in 0.01f64..=1.0,
        ) {
            let b = ClkStore::from_clks(
                256,
                (0..=256usize).map(|p| {
                    let mut clk = vec![0u8; 32];
                    for bit in 0..p { clk[bit / 8] |= 0x80 >> (bit % 8); }
                    clk
                }).collect::<Vec<_>>().iter().map(Vec::as_slice),
            ).unwrap();
            let targets = SortedTargets::new(&b);
            let range = targets.admissible(pa, t);
            for j in 0..b.len() {
                let reachable = pa > 0 && dice_upper_bound(pa, targets.store.popcount(j)) >= t;
                prop_assert_eq!(range.contains(&j), reachable, "j={} pb={}", j, targets.store.popcount(j));
            }
        }
    }
}
