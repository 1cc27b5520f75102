//! Criterion benchmarks of the PSI primitives (the cost floor) and of whole sessions.
//!
//! `cargo bench -p blindlink-benches --bench psi`; figures in `papers/benchmarks.md`.
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use blindlink_cli::commands::bench::registry_insurer_groups;
use blindlink_psi::{
    CardinalityInitiator, CardinalityResponder, FalsePositiveRate, GroupedAnswerer, GroupedLimits,
    GroupedQuerier, MatchKeyName, SetEncoding, SizeBuckets, hash_to_group, mutual_in_memory,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use curve25519_dalek::Scalar;
use curve25519_dalek::ristretto::RistrettoPoint;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn elements(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range
        .map(|i| format!("element-{i:012}").into_bytes())
        .collect()
}

fn primitives(c: &mut Criterion) {
    let key = MatchKeyName::new("bench").unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let scalar = Scalar::random(&mut rng);
    let point = hash_to_group(&key, b"element-000000000001");
    let compressed = point.compress();
    let mut group = c.benchmark_group("psi/primitive");
    group.bench_function("hash_to_group", |b| {
        b.iter(|| hash_to_group(&key, black_box(b"element-000000000001")))
    });
    group.bench_function("variable_base_mul", |b| {
        b.iter(|| black_box(point) * black_box(scalar))
    });
    group.bench_function("compress", |b| b.iter(|| black_box(point).compress()));
    group.bench_function("decompress", |b| {
        b.iter(|| black_box(compressed).decompress())
    });
    let batch: Vec<RistrettoPoint> = (0..512u32)
        .map(|i| hash_to_group(&key, &i.to_le_bytes()))
        .collect();
    group.throughput(Throughput::Elements(512));
    group.bench_function("double_and_compress_batch_512", |b| {
        b.iter(|| RistrettoPoint::double_and_compress_batch(black_box(&batch)))
    });
    group.finish();
}

fn sessions(c: &mut Criterion) {
    const N: usize = 2000;
    let key = MatchKeyName::new("bench").unwrap();
    let ours = elements(0..N);
    let theirs = elements(N / 2..N + N / 2);
    let mut group = c.benchmark_group("psi/session");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("mutual_2000x2000", |b| {
        b.iter(|| {
            mutual_in_memory(
                &key,
                &ours,
                &theirs,
                &mut ChaCha20Rng::seed_from_u64(1),
                &mut ChaCha20Rng::seed_from_u64(2),
            )
            .unwrap()
        })
    });
    // One worker thread: directly comparable with the single-threaded primitives above.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("mutual_2000x2000_one_thread", |b| {
        b.iter(|| {
            one_thread.install(|| {
                mutual_in_memory(
                    &key,
                    &ours,
                    &theirs,
                    &mut ChaCha20Rng::seed_from_u64(1),
                    &mut ChaCha20Rng::seed_from_u64(2),
                )
                .unwrap()
            })
        })
    });
    for (name, encoding) in [
        ("cardinality_raw_2000x2000", SetEncoding::Raw),
        (
            "cardinality_bloom_2000x2000",
            SetEncoding::Bloom(FalsePositiveRate::new(1e-9).unwrap()),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || CardinalityResponder::new(&key, &theirs, encoding).unwrap(),
                |responder| {
                    let mut rng_a = ChaCha20Rng::seed_from_u64(1);
                    let mut rng_b = ChaCha20Rng::seed_from_u64(2);
                    let (initiator, request) =
                        CardinalityInitiator::start(&key, &ours, &mut rng_a).unwrap();
                    let reply = responder.handle_blinded_set(&request, &mut rng_b).unwrap();
                    initiator.handle_reply(&reply).unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Grouped PSI cardinality on 200 registry-insurer-like pairs (five fields, 45 tokens per
/// party per pair), one thread, each party's two steps timed separately: divide by 200 for the
/// cost per party per pair.
fn grouped(c: &mut Criterion) {
    const PAIRS: usize = 200;
    let (querier_groups, answerer_groups) = registry_insurer_groups(PAIRS, 1);
    let buckets = SizeBuckets::default();
    let limits = GroupedLimits::default();
    let session = [7u8; 16];
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("psi/grouped_200_pairs_one_thread");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PAIRS as u64));
    let rng = |seed| ChaCha20Rng::seed_from_u64(seed);
    let (_, query) =
        GroupedQuerier::start(&session, &querier_groups, &buckets, &limits, &mut rng(1)).unwrap();
    group.bench_function("querier", |b| {
        b.iter_batched(
            || {
                let answerer = GroupedAnswerer::start(
                    &session,
                    &answerer_groups,
                    &buckets,
                    &limits,
                    &mut rng(2),
                )
                .unwrap();
                answerer.handle_query(&query).unwrap().0
            },
            |reply| {
                one_thread.install(|| {
                    let (querier, _) = GroupedQuerier::start(
                        &session,
                        &querier_groups,
                        &buckets,
                        &limits,
                        &mut rng(1),
                    )
                    .unwrap();
                    querier.handle_reply(&reply).unwrap()
                })
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("answerer", |b| {
        b.iter(|| {
            one_thread.install(|| {
                let answerer = GroupedAnswerer::start(
                    &session,
                    &answerer_groups,
                    &buckets,
                    &limits,
                    &mut rng(2),
                )
                .unwrap();
                answerer.handle_query(&query).unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, primitives, sessions, grouped);
criterion_main!(benches);
