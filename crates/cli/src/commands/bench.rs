//! `blindlink bench`: reproducible timings of the building blocks.

use std::time::Instant;

use anyhow::Context;
use std::hint::black_box;

use blindlink_psi::{
    GroupedAnswerer, GroupedLimits, GroupedQuerier, MatchKeyName, SizeBuckets, TokenGroup,
    grouped_hash_to_group, hash_to_group, mutual_in_memory,
};
use curve25519_dalek::Scalar;
use curve25519_dalek::ristretto::RistrettoPoint;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Subcommands of `blindlink bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Both mutual-PSI parties in memory on N elements each, half of them shared.
    Psi(PsiBenchArgs),
    /// Grouped PSI cardinality on registry-insurer-like pairs (about 45 tokens per party per
    /// pair in five fields), both parties in memory.
    GroupedPsi(GroupedPsiBenchArgs),
    /// What each mode, encoding and hardening reveals to the attacks of the literature, against
    /// its linkage quality: leakage.csv and tradeoff.svg.
    Leakage(super::bench_leakage::LeakageBenchArgs),
}

/// Arguments of `blindlink bench grouped-psi`.
#[derive(Debug, clap::Args)]
pub struct GroupedPsiBenchArgs {
    /// Compared record pairs (five groups each).
    #[arg(long, default_value_t = 2_000)]
    pub pairs: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of the records and both parties' RNGs (the timing does not depend on it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Tokens per thread for measuring the cost floor before and after the run.
    #[arg(long, default_value_t = 3_000)]
    pub floor_samples: usize,
}

/// Arguments of `blindlink bench psi`.
#[derive(Debug, clap::Args)]
pub struct PsiBenchArgs {
    /// Elements per party.
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of both parties' RNGs (the timing does not depend on it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Elements per thread for measuring the cost floor before and after the run.
    #[arg(long, default_value_t = 5_000)]
    pub floor_samples: usize,
}

/// Runs `blindlink bench`.
///
/// # Errors
/// A zero thread count, a thread pool that cannot start, or a PSI failure (a bug).
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Psi(args) => {
            let report = bench_psi(&args)?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::GroupedPsi(args) => {
            let report = bench_grouped_psi(&args)?;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Leakage(args) => super::bench_leakage::run(&args),
    }
}

const KANA: &[char] = &[
    'ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ', 'タ',
    'チ', 'ツ', 'テ', 'ト', 'ナ', 'ニ', 'ヌ', 'ネ', 'ノ', 'ハ', 'ヒ', 'フ', 'ヘ', 'ホ', 'マ', 'ミ',
    'ム', 'メ', 'モ', 'ヤ', 'ユ', 'ヨ', 'ラ', 'リ', 'ル', 'レ', 'ロ', 'ワ', 'ン',
];
const KANJI: &[char] = &[
    '山', '田', '佐', '藤', '鈴', '木', '高', '橋', '伊', '渡', '辺', '中', '村', '小', '林', '加',
    '吉', '本', '松', '井', '太', '郎', '子', '美', '和', '信', '健', '一', '花', '春',
];
const ADDRESS: &[char] = &[
    '東', '京', '都', '大', '阪', '府', '市', '区', '町', '丁', '目', '番', '地', '号', '北', '南',
    '西', '中', '央', '新', '宿', '川', '崎', '横', '浜', '1', '2', '3', '4', '5', '6', '7', '8',
    '9', '0', '-',
];

fn pick(rng: &mut ChaCha20Rng, alphabet: &[char], len: usize) -> Vec<char> {
    (0..len)
        .map(|_| alphabet[(rng.next_u32() as usize) % alphabet.len()])
        .collect()
}

/// The bigrams of `chars` with a `_` sentinel at both ends (as the encoder's padded q-grams).
fn bigrams(chars: &[char], padded: bool) -> Vec<Vec<u8>> {
    let mut all = Vec::with_capacity(chars.len() + 2);
    if padded {
        all.push('_');
    }
    all.extend_from_slice(chars);
    if padded {
        all.push('_');
    }
    all.windows(2)
        .map(|w| w.iter().collect::<String>().into_bytes())
        .collect()
}

/// One compared pair as the two parties' five token groups: kana name bigrams (8), kanji name
/// bigrams (4), date of birth (1), sex (1), address bigrams (31): 45 tokens per party, padded
/// to 8 + 4 + 1 + 1 + 32 = 46 points. The second party's record has one kana and two address
/// characters changed, so most tokens are shared.
fn registry_insurer_pair(pair: usize, rng: &mut ChaCha20Rng) -> [[TokenGroup; 5]; 2] {
    let kana = pick(rng, KANA, 7);
    let kanji = pick(rng, KANJI, 3);
    let address = pick(rng, ADDRESS, 32);
    let dob = format!(
        "19{:02}-{:02}-{:02}",
        rng.next_u32() % 100,
        1 + rng.next_u32() % 12,
        1 + rng.next_u32() % 28
    );
    let sex = if rng.next_u32() & 1 == 0 { "1" } else { "2" };
    let mut kana_b = kana.clone();
    kana_b[3] = KANA[(rng.next_u32() as usize) % KANA.len()];
    let mut address_b = address.clone();
    address_b[10] = '区';
    address_b[25] = '9';
    let record = |kana: &[char], address: &[char]| {
        let label = |field: &str| format!("pair {pair} / {field}").into_bytes();
        [
            TokenGroup {
                label: label("kana_name"),
                tokens: bigrams(kana, true),
            },
            TokenGroup {
                label: label("kanji_name"),
                tokens: bigrams(&kanji, true),
            },
            TokenGroup {
                label: label("dob"),
                tokens: vec![dob.clone().into_bytes()],
            },
            TokenGroup {
                label: label("sex"),
                tokens: vec![sex.as_bytes().to_vec()],
            },
            TokenGroup {
                label: label("address"),
                tokens: bigrams(address, false),
            },
        ]
    };
    [record(&kana, &address), record(&kana_b, &address_b)]
}

/// `pairs` registry-insurer-like pairs as the querier's and the answerer's groups (five per
/// pair, in the same order); for `blindlink bench grouped-psi` and the criterion benchmark.
pub fn registry_insurer_groups(pairs: usize, seed: u64) -> (Vec<TokenGroup>, Vec<TokenGroup>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut querier = Vec::with_capacity(pairs * 5);
    let mut answerer = Vec::with_capacity(pairs * 5);
    for pair in 0..pairs {
        let [q, a] = registry_insurer_pair(pair, &mut rng);
        querier.extend(q);
        answerer.extend(a);
    }
    (querier, answerer)
}

/// CPU time of this process so far, in seconds, summed over its threads (Linux
/// `/proc/self/task/*/schedstat`, nanoseconds); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let mut total: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// CPU time of the calling thread so far, in seconds (Linux `/proc/thread-self/schedstat`).
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(nanos as f64 / 1e9)
}

/// Times `step`: wall seconds and the CPU seconds the process spent meanwhile (wall times the
/// pool's threads where the CPU time cannot be read).
fn timed<T>(threads: usize, step: impl FnOnce() -> T) -> (T, f64, f64) {
    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    let out = step();
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, process_cpu_seconds()) {
        (Some(before), Some(after)) => after - before,
        _ => wall * threads as f64,
    };
    (out, wall, cpu)
}

/// Runs the grouped PSI benchmark and returns the report lines.
///
/// # Errors
/// A zero thread count, a thread pool that cannot start, or a PSI failure (a bug).
pub fn bench_grouped_psi(args: &GroupedPsiBenchArgs) -> anyhow::Result<String> {
    if args.threads == Some(0) {
        anyhow::bail!("--threads must be at least 1");
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        builder = builder.num_threads(threads);
    }
    let pool = builder.build().context("cannot start the thread pool")?;
    let threads = pool.current_num_threads();
    let (querier_groups, answerer_groups) = registry_insurer_groups(args.pairs, args.seed);
    let buckets = SizeBuckets::default();
    let limits = GroupedLimits {
        max_groups: querier_groups.len().max(1),
        ..GroupedLimits::default()
    };
    let session = [7u8; 16];
    let mut rng_q = ChaCha20Rng::seed_from_u64(args.seed.wrapping_add(1));
    let mut rng_a = ChaCha20Rng::seed_from_u64(args.seed.wrapping_add(2));
    let floor_before = measure_grouped_floor(&pool, args.floor_samples)?;
    let (started, q1_wall, q1_cpu) = timed(threads, || {
        pool.install(|| {
            GroupedQuerier::start(&session, &querier_groups, &buckets, &limits, &mut rng_q)
        })
    });
    let (querier_state, query) = started?;
    let (answerer, a1_wall, a1_cpu) = timed(threads, || {
        pool.install(|| {
            GroupedAnswerer::start(&session, &answerer_groups, &buckets, &limits, &mut rng_a)
        })
    });
    let answerer = answerer?;
    let (answered, a2_wall, a2_cpu) =
        timed(threads, || pool.install(|| answerer.handle_query(&query)));
    let (reply, _) = answered?;
    let (outcome, q2_wall, q2_cpu) = timed(threads, || {
        pool.install(|| querier_state.handle_reply(&reply))
    });
    let outcome = outcome?;
    let floor_after = measure_grouped_floor(&pool, args.floor_samples)?;
    let floor = (floor_before + floor_after) / 2.0;

    let tokens_q: usize = querier_groups.iter().map(|g| g.tokens.len()).sum();
    let tokens_a: usize = answerer_groups.iter().map(|g| g.tokens.len()).sum();
    let padded_q = query.point_count();
    let padded_a: usize = reply.answerer_padded_sizes().iter().sum();
    let shared: u64 = outcome.groups.iter().map(|g| u64::from(g.shared)).sum();
    let pairs = args.pairs.max(1) as f64;
    let querier_cpu = q1_cpu + q2_cpu;
    let answerer_cpu = a1_cpu + a2_cpu;
    let wall = q1_wall + q2_wall + a1_wall + a2_wall;
    let per_pair_ms = |cpu: f64| cpu * 1e3 / pairs;
    let per_token_us = |cpu: f64, tokens: usize| cpu * 1e6 / tokens.max(1) as f64;
    let mean_party_ms = (per_pair_ms(querier_cpu) + per_pair_ms(answerer_cpu)) / 2.0;
    let tokens_per_pair = (tokens_q + tokens_a) as f64 / 2.0 / pairs;
    let floor_pair_ms = floor * tokens_per_pair / 1e3;
    Ok(format!(
        "grouped psi, {} pairs x 5 fields, {threads} threads, buckets {}, curve backend {}\n\
         tokens per party per pair: {:.1} (querier {tokens_q}, answerer {tokens_a} in all), padded to {:.1} points ({padded_q} and {padded_a})\n\
         shared tokens: {shared} ({:.1} per pair)\n\
         wall: {wall:.3} s; querier start {q1_wall:.3} + reply {q2_wall:.3}, answerer start {a1_wall:.3} + query {a2_wall:.3}\n\
         querier: {:.3} ms cpu per pair, {:.2} us per token\n\
         answerer: {:.3} ms cpu per pair, {:.2} us per token\n\
         per party per pair (mean): {mean_party_ms:.3} ms cpu\n\
         floor per token (hash + 2 mul + 2 batch-compress + decompress, cpu time, just before and after): \
         {floor:.2} us of one core ({floor_before:.2} before, {floor_after:.2} after) = {floor_pair_ms:.3} ms per party per pair\n\
         ratio to floor: {:.3}",
        args.pairs,
        buckets.describe(),
        blindlink_psi::curve_backend(),
        tokens_per_pair,
        (padded_q + padded_a) as f64 / 2.0 / pairs,
        shared as f64 / pairs,
        per_pair_ms(querier_cpu),
        per_token_us(querier_cpu, tokens_q),
        per_pair_ms(answerer_cpu),
        per_token_us(answerer_cpu, tokens_a),
        mean_party_ms / floor_pair_ms.max(f64::MIN_POSITIVE),
    ))
}

/// The cost floor of one token for one party, with the primitives one by one on every thread
/// of the pool at once: hash to the group, multiply (own token); decompress, multiply (a peer's
/// point); two compressions at the batched rate. Microseconds of one core.
fn measure_grouped_floor(pool: &rayon::ThreadPool, samples: usize) -> anyhow::Result<f64> {
    let samples = samples.max(1);
    let scalar = Scalar::random(&mut ChaCha20Rng::seed_from_u64(7));
    let session = [7u8; 16];
    let per_thread: Vec<anyhow::Result<f64>> = pool.broadcast(|_| {
        let mut halves = Vec::with_capacity(512);
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        for i in 0..samples {
            let own = grouped_hash_to_group(&session, b"floor", 0, &(i as u64).to_le_bytes())
                * black_box(scalar);
            halves.push(own);
            if halves.len() == 256 || i + 1 == samples {
                let compressed = RistrettoPoint::double_and_compress_batch(&halves);
                let peers: Vec<RistrettoPoint> = compressed
                    .iter()
                    .map(|c| {
                        c.decompress()
                            .map(|p| p * black_box(scalar))
                            .context("a compressed point did not decompress")
                    })
                    .collect::<anyhow::Result<_>>()?;
                black_box(RistrettoPoint::double_and_compress_batch(&peers));
                halves.clear();
            }
        }
        // CPU time where it can be read, like the run it is compared with.
        let seconds = match (cpu_start, thread_cpu_seconds()) {
            (Some(before), Some(after)) => after - before,
            _ => start.elapsed().as_secs_f64(),
        };
        Ok(seconds * 1e6 / samples as f64)
    });
    let per_thread = per_thread
        .into_iter()
        .collect::<anyhow::Result<Vec<f64>>>()?;
    Ok(per_thread.iter().sum::<f64>() / per_thread.len() as f64)
}

/// Runs the PSI benchmark and returns the report lines.
///
/// # Errors
/// As [`run`].
pub fn bench_psi(args: &PsiBenchArgs) -> anyhow::Result<String> {
    if args.threads == Some(0) {
        anyhow::bail!("--threads must be at least 1");
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        builder = builder.num_threads(threads);
    }
    let pool = builder.build().context("cannot start the thread pool")?;
    let threads = pool.current_num_threads();
    // Initiator has 0..n, responder n/2..n+n/2: exactly n/2 shared.
    let n = args.items;
    let initiator: Vec<Vec<u8>> = (0..n).map(element).collect();
    let responder: Vec<Vec<u8>> = (n / 2..n + n / 2).map(element).collect();
    let key = MatchKeyName::new("bench")?;
    let mut rng_a = ChaCha20Rng::seed_from_u64(args.seed);
    let mut rng_b = ChaCha20Rng::seed_from_u64(args.seed.wrapping_add(1));
    let floor_before = measure_floor(&pool, &key, args.floor_samples)?;
    let start = Instant::now();
    let (ours, theirs) =
        pool.install(|| mutual_in_memory(&key, &initiator, &responder, &mut rng_a, &mut rng_b))?;
    let elapsed = start.elapsed();
    let floor_after = measure_floor(&pool, &key, args.floor_samples)?;
    // The machine is shared: the floor is measured just before and just after the run, on
    // the same threads, and averaged, so that it sees about the same load as the run.
    let floor = (floor_before + floor_after) / 2.0;
    let shared = n - n / 2;
    if ours.matches.len() != shared {
        anyhow::bail!(
            "psi found {} shared elements, expected {shared}",
            ours.matches.len()
        );
    }
    if ours.matches.len() != theirs.matches.len() {
        anyhow::bail!("the two parties disagree on the intersection size");
    }
    // Both parties share the pool, so one party's cost per element is half the core time
    // spent per element pair.
    let seconds = elapsed.as_secs_f64();
    let core_us_per_pair = seconds * 1e6 * threads as f64 / n.max(1) as f64;
    let per_party = core_us_per_pair / 2.0;
    Ok(format!(
        "mutual psi, {n} x {n} elements ({shared} shared), {threads} threads\n\
         elapsed: {seconds:.3} s\n\
         per element per party: {per_party:.2} us of one core\n\
         per element pair (both parties): {core_us_per_pair:.2} us of one core\n\
         floor (hash + 2 mul + 2 compress + decompress, on {threads} threads just before and after): \
         {floor:.2} us of one core ({floor_before:.2} before, {floor_after:.2} after)\n\
         ratio to floor: {:.3}\n\
         curve backend: {}",
        per_party / floor,
        blindlink_psi::curve_backend()
    ))
}

/// The cost floor of one element for one party, measured with the primitives one by one (no
/// batching) on every thread of the pool at once, so that it sees the same machine load as the
/// protocol run: hash to the group, multiply, compress (own element), decompress, multiply,
/// compress (the peer's). Returns microseconds of one core.
fn measure_floor(
    pool: &rayon::ThreadPool,
    key: &MatchKeyName,
    samples: usize,
) -> anyhow::Result<f64> {
    let samples = samples.max(1);
    let mut scalar_rng = ChaCha20Rng::seed_from_u64(7);
    let scalar = Scalar::random(&mut scalar_rng);
    let per_thread: Vec<anyhow::Result<f64>> = pool.broadcast(|_| {
        let start = Instant::now();
        for i in 0..samples {
            let own = (hash_to_group(key, &element(i)) * black_box(scalar)).compress();
            let peer = black_box(own)
                .decompress()
                .context("a compressed point did not decompress")?;
            black_box((peer * black_box(scalar)).compress());
        }
        Ok(start.elapsed().as_secs_f64() * 1e6 / samples as f64)
    });
    let per_thread = per_thread
        .into_iter()
        .collect::<anyhow::Result<Vec<f64>>>()?;
    Ok(per_thread.iter().sum::<f64>() / per_thread.len() as f64)
}

fn element(i: usize) -> Vec<u8> {
    format!("element-{i:012}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(items: usize, threads: Option<usize>, expected: Result<&str, &str>) {
        let args = PsiBenchArgs {
            items,
            threads,
            seed: 1,
            floor_samples: 10,
        };
        match (bench_psi(&args), expected) {
            (Ok(report), Ok(first_line)) => {
                assert_eq!(report.lines().next(), Some(first_line), "{report}")
            }
            (Err(error), Err(message)) => assert_eq!(error.to_string(), message),
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn grouped_psi_bench() {
        let args = |pairs, threads| GroupedPsiBenchArgs {
            pairs,
            threads,
            seed: 3,
            floor_samples: 10,
        };
        let report = bench_grouped_psi(&args(20, Some(1))).unwrap();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "grouped psi, 20 pairs x 5 fields, 1 threads, buckets two-three, curve backend {}",
                blindlink_psi::curve_backend()
            )
        );
        assert!(
            lines[1].starts_with("tokens per party per pair: 45.0 (querier 900, answerer 900 in all), padded to 46.0 points (920 and 920)"),
            "{report}"
        );
        assert_eq!(
            bench_grouped_psi(&args(1, Some(0)))
                .unwrap_err()
                .to_string(),
            "--threads must be at least 1"
        );
    }

    #[test]
    fn registry_insurer_pairs_share_most_tokens() {
        let (q, a) = registry_insurer_groups(50, 9);
        assert_eq!((q.len(), a.len()), (250, 250));
        let (outcome, _) = blindlink_psi::grouped_in_memory(
            &[1; 16],
            &q,
            &a,
            &SizeBuckets::default(),
            &GroupedLimits::default(),
            &mut ChaCha20Rng::seed_from_u64(1),
            &mut ChaCha20Rng::seed_from_u64(2),
        )
        .unwrap();
        // Dates and sexes always agree; names and addresses differ in a few bigrams.
        for pair in outcome.groups.chunks(5) {
            assert_eq!((pair[2].shared, pair[3].shared), (1, 1));
            assert!(pair[0].shared >= 6 && pair[0].shared <= 8, "{pair:?}");
            assert_eq!(pair[1].shared, 4);
            assert!(pair[4].shared >= 27 && pair[4].shared <= 31, "{pair:?}");
        }
    }

    #[test]
    fn psi_bench() {
        check(
            10,
            Some(1),
            Ok("mutual psi, 10 x 10 elements (5 shared), 1 threads"),
        );
        check(
            7,
            Some(2),
            Ok("mutual psi, 7 x 7 elements (4 shared), 2 threads"),
        );
        check(
            0,
            Some(1),
            Ok("mutual psi, 0 x 0 elements (0 shared), 1 threads"),
        );
        check(10, Some(0), Err("--threads must be at least 1"));
    }
}
