//! `blindlink bench`: reproducible timings of the building blocks.

use std::time::Instant;

use anyhow::Context;
use std::hint::black_box;

use blindlink_psi::{MatchKeyName, hash_to_group, mutual_in_memory};
use curve25519_dalek::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Subcommands of `blindlink bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Both mutual-PSI parties in memory on N elements each, half of them shared.
    Psi(PsiBenchArgs),
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
    }
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
         ratio to floor: {:.3}",
        per_party / floor
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
