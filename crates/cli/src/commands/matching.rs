//! `blindlink match`: Dice candidates between two CLK files, optionally blocked by LSH, solved
//! one-to-one (greedy or optimal) or kept many-to-many, written as `a_index,b_index,score`.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_encoding::format::read_clks;
use blindlink_matching::{
    BlockingKey, Candidate, CandidateSearch, ClkStore, DEFAULT_OPTIMAL_CELL_LIMIT, DiceThreshold,
    LshBlocker, LshParameters, SearchStats, greedy, optimal,
};

use crate::output::AtomicFile;

/// How candidates become links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Solver {
    /// One-to-one, highest score first (anonlink's greedy solver; ties: lower a, then lower b).
    Greedy,
    /// One-to-one maximising the sum of scores (Hungarian algorithm per connected group).
    Optimal,
    /// No solver: every candidate pair (many-to-many), streamed in order of a then b.
    None,
}

/// Arguments of `blindlink match`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  blindlink match --a a.json --b b.json --threshold 0.8 --output pairs.csv\n  blindlink match --a a.json --b b.json --threshold 0.7 --blocking lsh:bands=20,bits=24 --solver none --output candidates.csv"
)]
pub struct MatchArgs {
    /// CLKs of data set a: anonlink JSON ({"clks": [base64, ...]}) or blindlink's binary format.
    #[arg(long, value_name = "CLKS")]
    pub a: PathBuf,
    /// CLKs of data set b, in either format; same filter length as a.
    #[arg(long, value_name = "CLKS")]
    pub b: PathBuf,
    /// Dice similarity threshold in (0, 1]: pairs scoring at least this are candidates.
    #[arg(long, value_name = "T")]
    pub threshold: f64,
    /// Compare only pairs that share a Hamming-LSH band: lsh:bands=B,bits=K[,seed=S]. The seed
    /// picks the sampled bits (default 0); between two parties they come from the shared secret.
    #[arg(long, value_name = "SPEC")]
    pub blocking: Option<String>,
    /// How candidates become links.
    #[arg(long, value_enum, default_value_t = Solver::Greedy)]
    pub solver: Solver,
    /// Keep only the K best candidates of each record of a (before solving).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Where to write `a_index,b_index,score` (0-based indices in input order); written
    /// atomically.
    #[arg(long, value_name = "CSV")]
    pub output: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// True links (`a_index,b_index`): with --blocking, also print the blocking step's pairs
    /// completeness and pairs quality.
    #[arg(long, value_name = "CSV")]
    pub truth: Option<PathBuf>,
}

/// Parses `lsh:bands=B,bits=K[,seed=S]` (also for the Python binding's `blocking=`).
///
/// # Errors
/// Not that form; the message quotes the spec and says what was expected.
pub fn parse_blocking(spec: &str) -> anyhow::Result<(LshParameters, u64)> {
    let usage = "expected lsh:bands=B,bits=K[,seed=S]";
    let Some(rest) = spec.strip_prefix("lsh:") else {
        bail!("--blocking {spec:?}: unknown blocking method, {usage}");
    };
    let (mut bands, mut bits, mut seed) = (None, None, 0u64);
    for part in rest.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            bail!("--blocking {spec:?}: {part:?} is not key=value, {usage}");
        };
        let number = || -> anyhow::Result<u64> {
            value.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--blocking {spec:?}: {key}={value:?} is not a non-negative integer"
                )
            })
        };
        match key {
            "bands" => bands = Some(number()? as usize),
            "bits" => bits = Some(number()? as usize),
            "seed" => seed = number()?,
            _ => bail!("--blocking {spec:?}: unknown parameter {key:?}, {usage}"),
        }
    }
    let (Some(bands), Some(bits_per_band)) = (bands, bits) else {
        bail!("--blocking {spec:?}: bands and bits are both required, {usage}");
    };
    Ok((
        LshParameters {
            bands,
            bits_per_band,
        },
        seed,
    ))
}

fn load(path: &Path, side: &str) -> anyhow::Result<ClkStore> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let clks = read_clks(file).with_context(|| format!("{} (--{side})", path.display()))?;
    if clks.is_empty() {
        bail!("{} (--{side}): the file holds no clks", path.display());
    }
    let mut store = ClkStore::new(clks.filter_bits())
        .with_context(|| format!("{} (--{side})", path.display()))?;
    store.reserve(clks.len());
    for clk in clks.iter() {
        store
            .push(clk)
            .with_context(|| format!("{} (--{side})", path.display()))?;
    }
    Ok(store)
}

fn write_pairs(file: &mut AtomicFile, pairs: &[Candidate]) -> std::io::Result<()> {
    for c in pairs {
        // `{}` prints the shortest text that reads back as the same f64, so thresholds applied
        // later (`blindlink evaluate --thresholds`) see exactly the computed score.
        writeln!(file, "{},{},{}", c.a, c.b, c.score)?;
    }
    Ok(())
}

/// Runs `blindlink match`.
///
/// # Errors
/// Unreadable or malformed CLK files (naming the file and record), filter lengths that differ
/// between a and b, a threshold outside (0, 1], a bad `--blocking` spec or `--top-k`, an
/// optimal-solver component above its size limit, or a failed write (then no output appears).
pub fn run(args: MatchArgs) -> anyhow::Result<()> {
    let threshold = DiceThreshold::new(args.threshold).context("--threshold")?;
    let mut search = CandidateSearch::new(threshold);
    if let Some(k) = args.top_k {
        search = search.top_k(k).context("--top-k")?;
    }
    let blocking = args.blocking.as_deref().map(parse_blocking).transpose()?;
    let truth: Option<Vec<(usize, usize)>> = match &args.truth {
        Some(path) => Some(
            crate::commands::evaluate::read_pairs(path, false)?
                .into_iter()
                .map(|c| (c.a, c.b))
                .collect(),
        ),
        None => None,
    };
    let a = load(&args.a, "a")?;
    let b = load(&args.b, "b")?;
    if a.filter_bits() != b.filter_bits() {
        bail!(
            "filter lengths differ: {} (--a) has {}-bit filters, {} (--b) has {}-bit filters",
            args.a.display(),
            a.filter_bits(),
            args.b.display(),
            b.filter_bits()
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let mut output = AtomicFile::create(&args.output)?;
    writeln!(output, "a_index,b_index,score")
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let mut kept = Vec::new();
    let mut write_error = None;
    let mut sink = |batch: &[Candidate]| {
        if args.solver == Solver::None {
            if let Err(e) = write_pairs(&mut output, batch) {
                write_error = Some(e);
                return ControlFlow::Break(());
            }
        } else {
            kept.extend_from_slice(batch);
        }
        ControlFlow::Continue(())
    };
    let stats: SearchStats = pool.install(|| -> anyhow::Result<SearchStats> {
        match blocking {
            None => Ok(search.stream(&a, &b, &mut sink)?),
            Some((params, seed)) => {
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&seed.to_le_bytes());
                let blocker = LshBlocker::new(&BlockingKey::new(key), params, a.filter_bits())
                    .context("--blocking")?;
                let blocked = blocker.block(&a, &b)?;
                eprintln!(
                    "blocking: {} bands x {} bits kept {} of {} pairs (reduction ratio {:.6})",
                    params.bands,
                    params.bits_per_band,
                    blocked.pair_count(),
                    a.len() as u64 * b.len() as u64,
                    blocked.reduction_ratio()
                );
                if let Some(truth) = &truth {
                    let q = blocked.quality(truth);
                    eprintln!(
                        "blocking: pairs completeness {:.4} ({} of {} true links kept), pairs quality {:.6}",
                        q.pairs_completeness(),
                        q.true_candidate_pairs,
                        q.true_pairs,
                        q.pairs_quality()
                    );
                }
                Ok(search.stream_blocked(&a, &b, &blocked, &mut sink)?)
            }
        }
    })?;
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("cannot write {}", args.output.display()));
    }
    let links = match args.solver {
        Solver::None => stats.candidates,
        Solver::Greedy | Solver::Optimal => {
            let links = if args.solver == Solver::Greedy {
                greedy(&kept)?
            } else {
                optimal(&kept, DEFAULT_OPTIMAL_CELL_LIMIT)?
            };
            write_pairs(&mut output, &links)
                .with_context(|| format!("cannot write {}", args.output.display()))?;
            links.len() as u64
        }
    };
    output.commit()?;
    eprintln!(
        "{} x {} records ({}-bit filters): {} of {} pairs compared, {} candidates at threshold {}, {} {} written to {}",
        a.len(),
        b.len(),
        a.filter_bits(),
        stats.comparisons,
        stats.considered_pairs,
        stats.candidates,
        threshold.value(),
        links,
        if args.solver == Solver::None {
            "pairs"
        } else {
            "links"
        },
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<(usize, usize, u64), &str>) {
        let got = parse_blocking(spec)
            .map(|(p, seed)| (p.bands, p.bits_per_band, seed))
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{spec}");
    }

    #[test]
    fn blocking_specs() {
        check("lsh:bands=20,bits=24", Ok((20, 24, 0)));
        check("lsh:bits=8,bands=2,seed=7", Ok((2, 8, 7)));
        check(
            "minhash:bands=2",
            Err(
                "--blocking \"minhash:bands=2\": unknown blocking method, expected lsh:bands=B,bits=K[,seed=S]",
            ),
        );
        check(
            "lsh:bands=2",
            Err(
                "--blocking \"lsh:bands=2\": bands and bits are both required, expected lsh:bands=B,bits=K[,seed=S]",
            ),
        );
        check(
            "lsh:bands=x,bits=2",
            Err("--blocking \"lsh:bands=x,bits=2\": bands=\"x\" is not a non-negative integer"),
        );
        check(
            "lsh:bands=2,bits",
            Err(
                "--blocking \"lsh:bands=2,bits\": \"bits\" is not key=value, expected lsh:bands=B,bits=K[,seed=S]",
            ),
        );
        check(
            "lsh:bands=2,bits=3,rows=4",
            Err(
                "--blocking \"lsh:bands=2,bits=3,rows=4\": unknown parameter \"rows\", expected lsh:bands=B,bits=K[,seed=S]",
            ),
        );
    }
}
