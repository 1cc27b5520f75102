//! Dice candidate-search throughput, for the side-by-side comparison with anonlink
//! (`scripts/anonlink_speed.py` drives it; figures in papers/benchmarks.md).
//!
//! ```text
//! cargo build --release -p blindlink-matching --example dice_throughput
//! target/release/examples/dice_throughput A.bin B.bin BITS THRESHOLD THREADS RUNS [PAIRS.csv]
//! target/release/examples/dice_throughput --random N SEED BITS THRESHOLD THREADS RUNS
//! target/release/examples/dice_throughput --mixed N SEED BITS THRESHOLD THREADS RUNS
//! ```
//! `--mixed` draws each filter's density from 1/2, 1/4 and 1/8, where popcount pruning helps.
//! `A.bin`/`B.bin` hold concatenated filters of BITS bits. `--random` generates N × N uniformly
//! random filters from a ChaCha8 stream seeded with SEED (anonlink's benchmark workload) without
//! holding anything but the two stores. For every available kernel, with and without popcount
//! pruning, it prints the median wall and CPU time of RUNS runs and comparisons per second (per
//! wall second and per CPU second: the machine is shared, so the latter is the per-core
//! figure), and writes
//! the candidates of the last run as `a_index,b_index,score` (scores to 17 significant digits).
#![allow(missing_docs)]

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

use blindlink_matching::{CandidateSearch, ClkStore, DiceKernel, DiceThreshold};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// CPU time of all threads of this process, in seconds, from `/proc/self/task/*/schedstat`
/// (nanoseconds on a CPU): on a shared, oversubscribed machine, throughput per CPU-second is
/// what "per core" means, while wall time also counts the time other processes held the cores.
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    nanos as f64 / 1e9
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str);
    let (a, b, rest) = if mode == Some("--random") || mode == Some("--mixed") {
        let mixed = mode == Some("--mixed");
        let n: usize = args[1].parse()?;
        let seed: u64 = args[2].parse()?;
        let bits: usize = args[3].parse()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut store = |n| -> Result<ClkStore, Box<dyn std::error::Error>> {
            let mut s = ClkStore::new(bits)?;
            s.reserve(n);
            let mut clk = vec![0u8; bits / 8];
            for _ in 0..n {
                rng.fill_bytes(&mut clk);
                if mixed {
                    // Densities 1/2, 1/4 or 1/8: AND with 0 to 2 more random fills.
                    let mut more = vec![0u8; clk.len()];
                    for _ in 0..rng.random_range(0..3) {
                        rng.fill_bytes(&mut more);
                        clk.iter_mut().zip(&more).for_each(|(c, m)| *c &= m);
                    }
                }
                s.push(&clk)?;
            }
            Ok(s)
        };
        (store(n)?, store(n)?, &args[4..])
    } else {
        let bits: usize = args[2].parse()?;
        (
            ClkStore::from_bytes(bits, &std::fs::read(&args[0])?)?,
            ClkStore::from_bytes(bits, &std::fs::read(&args[1])?)?,
            &args[3..],
        )
    };
    let threshold = DiceThreshold::new(rest[0].parse()?)?;
    let threads: usize = rest[1].parse()?;
    let runs: usize = rest[2].parse()?;
    let output = rest.get(3);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    println!(
        "{} x {} filters of {} bits, threshold {}, {} thread(s), median of {} runs",
        a.len(),
        b.len(),
        a.filter_bits(),
        threshold.value(),
        threads,
        runs
    );
    println!(
        "kernel            prune  wall s  cpu s   comparisons  candidates  Mcmp/s wall  Mcmp/cpu-s  Mpairs/cpu-s"
    );
    let mut last = Vec::new();
    // BLINDLINK_KERNEL=avx512-vpopcntdq (for example) runs one kernel only, e.g. under perf.
    let only = std::env::var("BLINDLINK_KERNEL").ok();
    let kernels = DiceKernel::available()
        .into_iter()
        .filter(|k| only.as_deref().is_none_or(|name| name == k.name()));
    for kernel in kernels {
        for prune in [false, true] {
            let search = CandidateSearch::new(threshold).kernel(kernel).prune(prune);
            let mut times = Vec::new();
            let mut cpu_times = Vec::new();
            let mut stats = None;
            for _ in 0..runs {
                let mut found = Vec::new();
                let start = Instant::now();
                let cpu_start = cpu_seconds();
                let s = pool.install(|| {
                    search.stream(&a, &b, |batch| {
                        found.extend_from_slice(batch);
                        ControlFlow::Continue(())
                    })
                })?;
                times.push(start.elapsed().as_secs_f64());
                cpu_times.push(cpu_seconds() - cpu_start);
                stats = Some(s);
                last = found;
            }
            times.sort_by(f64::total_cmp);
            cpu_times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let cpu = cpu_times[cpu_times.len() / 2];
            let stats = stats.expect("at least one run");
            println!(
                "{:<17} {:<5}  {:>6.3}  {:>6.3}  {:>11}  {:>10}  {:>11.0}  {:>11.0}  {:>12.0}",
                kernel.name(),
                prune,
                median,
                cpu,
                stats.comparisons,
                stats.candidates,
                stats.comparisons as f64 / median / 1e6,
                stats.comparisons as f64 / cpu / 1e6,
                stats.total_pairs() as f64 / cpu / 1e6,
            );
        }
    }
    if let Some(path) = output {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "a_index,b_index,score")?;
        for c in &last {
            writeln!(out, "{},{},{:.17}", c.a, c.b, c.score)?;
        }
        out.flush()?;
    }
    Ok(())
}
