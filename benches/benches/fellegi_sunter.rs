//! Fellegi–Sunter on 100,000 compared pairs (5 fields: three q-gram fields, a positional
//! date, an exact sex code; 98 % matches, 5 % of fields missing): counts → agreement
//! patterns → histogram, EM over the histogram, scoring every pair, and the whole chain.
//! One thread (the code is sequential).
//!
//!     cargo bench -p blindlink-benches --bench fellegi_sunter
//!
//! Criterion's throughput is in pairs per second. Figures: papers/benchmarks.md.
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use blindlink_matching::fellegi_sunter::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PAIRS: usize = 100_000;

/// splitmix64: a fixed, dependency-free stream so every run benchmarks the same pairs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

fn comparisons() -> Comparisons {
    Comparisons::new(vec![
        FieldComparison::for_token_kind("kana", TokenKind::QGram),
        FieldComparison::for_token_kind("kanji", TokenKind::QGram),
        FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
        FieldComparison::for_token_kind("sex", TokenKind::Exact),
        FieldComparison::for_token_kind("addr", TokenKind::QGram),
    ])
    .unwrap()
}

/// Token counts per field of synthetic pairs: a match shares all (or all but one) of its
/// tokens, a non-match a few; the peer's size is known up to a two-three bucket.
fn pairs(seed: u64) -> Vec<Vec<FieldObservation>> {
    let mut rng = SplitMix(seed);
    let sizes = [5u32, 3, 8, 1, 12];
    (0..PAIRS)
        .map(|_| {
            let is_match = rng.unit() < 0.98;
            sizes
                .iter()
                .map(|&size| {
                    if rng.unit() < 0.05 {
                        return FieldObservation::Missing;
                    }
                    let shared = if is_match {
                        size - u32::from(rng.unit() < 0.1).min(size - 1)
                    } else {
                        rng.below(size / 2 + 1)
                    };
                    let peer = size + rng.below(2);
                    let (peer_min, peer_max) = if peer <= 3 {
                        (peer, peer)
                    } else {
                        (peer - peer / 4, peer + peer / 4)
                    };
                    FieldObservation::Counts(FieldCounts {
                        shared,
                        own: size,
                        peer_min: peer_min.max(shared),
                        peer_max,
                    })
                })
                .collect()
        })
        .collect()
}

fn to_patterns(comparisons: &Comparisons, pairs: &[Vec<FieldObservation>]) -> Vec<Vec<Level>> {
    pairs
        .iter()
        .map(|p| comparisons.pattern(p).unwrap())
        .collect()
}

fn to_histogram(patterns: &[Vec<Level>]) -> PatternHistogram {
    let mut histogram = PatternHistogram::new();
    for p in patterns {
        histogram.add(p);
    }
    histogram
}

fn fellegi_sunter(c: &mut Criterion) {
    let comparisons = comparisons();
    let pairs = pairs(7);
    let patterns = to_patterns(&comparisons, &pairs);
    let histogram = to_histogram(&patterns);
    let model = estimate(&comparisons, &histogram, &EmSettings::default()).unwrap();
    eprintln!(
        "{} pairs, {} distinct patterns, {} EM iterations, lambda {:.4}",
        histogram.pairs(),
        histogram.len(),
        model.fit.iterations,
        model.lambda
    );
    let mut group = c.benchmark_group("fellegi_sunter_100k_pairs");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.sample_size(20);
    group.bench_function("levels_and_histogram", |b| {
        b.iter(|| to_histogram(&to_patterns(&comparisons, black_box(&pairs))))
    });
    group.bench_function("em", |b| {
        b.iter(|| estimate(&comparisons, black_box(&histogram), &EmSettings::default()).unwrap())
    });
    group.bench_function("score", |b| {
        b.iter(|| {
            let mut flagged = 0u32;
            for p in black_box(&patterns) {
                flagged += u32::from(model.score(p).unwrap().flagged(0.5));
            }
            flagged
        })
    });
    group.bench_function("whole_chain", |b| {
        b.iter(|| {
            let patterns = to_patterns(&comparisons, black_box(&pairs));
            let model = estimate(
                &comparisons,
                &to_histogram(&patterns),
                &EmSettings::default(),
            )
            .unwrap();
            patterns
                .iter()
                .filter(|p| model.score(p).unwrap().flagged(0.5))
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, fellegi_sunter);
criterion_main!(benches);
