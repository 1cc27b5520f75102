//! Dice matching throughput: kernels, the full candidate search on anonlink's benchmark
//! workload (uniformly random 1024-bit filters, threshold 0.8), solvers and LSH blocking.
//! One core unless the name says otherwise.
//!
//!     cargo bench -p blindlink-benches --bench matching
//!
//! Criterion's throughput is in pairs (comparisons) per second. The side-by-side comparison
//! with anonlink, with the candidate sets checked, is `scripts/anonlink_speed.py`; the figures
//! are in papers/benchmarks.md.
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::ops::ControlFlow;

use blindlink_matching::{
    BlockingKey, Candidate, CandidateSearch, ClkStore, DiceKernel, DiceThreshold, LshBlocker,
    LshParameters, greedy,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// splitmix64: a fixed, dependency-free stream so every run benchmarks the same filters.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn random_store(n: usize, bits: usize, seed: u64) -> ClkStore {
    let mut rng = SplitMix(seed);
    let mut store = ClkStore::new(bits).unwrap();
    let mut clk = vec![0u8; bits / 8];
    for _ in 0..n {
        for chunk in clk.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_be_bytes()[..chunk.len()]);
        }
        store.push(&clk).unwrap();
    }
    store
}

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

fn count(search: &CandidateSearch, a: &ClkStore, b: &ClkStore) -> u64 {
    search
        .stream(a, b, |batch| {
            black_box(batch);
            ControlFlow::Continue(())
        })
        .unwrap()
        .candidates
}

/// 1,000 x 10,000 random 1024-bit filters at 0.8 per kernel, with and without pruning.
fn candidate_search(c: &mut Criterion) {
    let a = random_store(1_000, 1024, 1);
    let b = random_store(10_000, 1024, 2);
    let pool = one_thread();
    let mut group = c.benchmark_group("dice_search_1k_x_10k_1024bit_t0.8_1core");
    group.throughput(Throughput::Elements((a.len() * b.len()) as u64));
    group.sample_size(10);
    for kernel in DiceKernel::available() {
        for prune in [false, true] {
            let search = CandidateSearch::new(DiceThreshold::new(0.8).unwrap())
                .kernel(kernel)
                .prune(prune);
            let id = BenchmarkId::new(kernel.name(), if prune { "pruned" } else { "unpruned" });
            group.bench_function(id, |bench| {
                bench.iter(|| pool.install(|| count(&search, &a, &b)))
            });
        }
    }
    group.finish();
}

/// Filters of mixed density, where the popcount bound prunes most pairs.
fn pruning(c: &mut Criterion) {
    let mut a = ClkStore::new(1024).unwrap();
    let mut b = ClkStore::new(1024).unwrap();
    let mut rng = SplitMix(3);
    for store in [&mut a, &mut b] {
        for _ in 0..2_000 {
            // Density from 1/8 to 1/2: AND of 1 to 3 random words.
            let depth = 1 + rng.next() % 3;
            let clk: Vec<u8> = (0..16)
                .flat_map(|_| {
                    let mut w = u64::MAX;
                    for _ in 0..depth {
                        w &= rng.next();
                    }
                    w.to_be_bytes()
                })
                .collect();
            store.push(&clk).unwrap();
        }
    }
    let pool = one_thread();
    let mut group = c.benchmark_group("dice_search_2k_x_2k_mixed_density_t0.8_1core");
    group.throughput(Throughput::Elements((a.len() * b.len()) as u64));
    for prune in [false, true] {
        let search = CandidateSearch::new(DiceThreshold::new(0.8).unwrap()).prune(prune);
        let name = if prune { "pruned" } else { "unpruned" };
        group.bench_function(name, |bench| {
            bench.iter(|| pool.install(|| count(&search, &a, &b)))
        });
    }
    group.finish();
}

fn all_cores(c: &mut Criterion) {
    let a = random_store(2_000, 1024, 4);
    let b = random_store(10_000, 1024, 5);
    let search = CandidateSearch::new(DiceThreshold::new(0.8).unwrap());
    let mut group = c.benchmark_group("dice_search_2k_x_10k_1024bit_t0.8");
    group.throughput(Throughput::Elements((a.len() * b.len()) as u64));
    group.sample_size(10);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for n in [1, threads] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap();
        group.bench_function(format!("{n}_threads"), |bench| {
            bench.iter(|| pool.install(|| count(&search, &a, &b)))
        });
    }
    group.finish();
}

fn solvers(c: &mut Criterion) {
    let mut rng = SplitMix(6);
    let candidates: Vec<Candidate> = (0..100_000)
        .map(|_| Candidate {
            a: (rng.next() % 50_000) as usize,
            b: (rng.next() % 50_000) as usize,
            score: 0.7 + (rng.next() % 3000) as f64 / 10_000.0,
        })
        .collect();
    let mut group = c.benchmark_group("solve_100k_candidates");
    group.throughput(Throughput::Elements(candidates.len() as u64));
    group.bench_function("greedy", |bench| {
        bench.iter(|| greedy(black_box(&candidates)).unwrap())
    });
    group.finish();
}

fn blocking(c: &mut Criterion) {
    let a = random_store(5_000, 1024, 7);
    let b = random_store(5_000, 1024, 8);
    let blocker = LshBlocker::new(
        &BlockingKey::new([9; 32]),
        LshParameters {
            bands: 20,
            bits_per_band: 16,
        },
        1024,
    )
    .unwrap();
    let pool = one_thread();
    let mut group = c.benchmark_group("lsh_block_5k_x_5k_20x16_1core");
    group.throughput(Throughput::Elements((a.len() + b.len()) as u64));
    group.sample_size(10);
    group.bench_function("block", |bench| {
        bench.iter(|| pool.install(|| blocker.block(&a, &b).unwrap().pair_count()))
    });
    group.finish();
}

criterion_group!(
    benches,
    candidate_search,
    pruning,
    all_cores,
    solvers,
    blocking
);
criterion_main!(benches);
