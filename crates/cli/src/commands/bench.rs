//! `blindlink bench`: reproducible timings of the building blocks.

use std::time::Instant;

use anyhow::Context;
use blindlink_psi::{MatchKeyName, mutual_in_memory};
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
    let start = Instant::now();
    let (ours, theirs) =
        pool.install(|| mutual_in_memory(&key, &initiator, &responder, &mut rng_a, &mut rng_b))?;
    let elapsed = start.elapsed();
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
    Ok(format!(
        "mutual psi, {n} x {n} elements ({shared} shared), {threads} threads\n\
         elapsed: {seconds:.3} s\n\
         per element per party: {:.2} us of one core\n\
         per element pair (both parties): {core_us_per_pair:.2} us of one core",
        core_us_per_pair / 2.0
    ))
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
