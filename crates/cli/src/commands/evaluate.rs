//! `blindlink evaluate`: linkage quality of a pairs file against a truth file, and precision /
//! recall over a sweep of thresholds.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_matching::{
    BlockingQuality, Candidate, LinkageQuality, quality_by_threshold, threshold_sweep,
};

/// Arguments of `blindlink evaluate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  blindlink evaluate --pairs pairs.csv --truth truth.csv --thresholds 0.5:0.95:0.05"
)]
pub struct EvaluateArgs {
    /// Pairs to evaluate: CSV with header `a_index,b_index,score` (as `blindlink match` writes;
    /// the score column may be absent when no sweep is asked for).
    #[arg(long, value_name = "CSV")]
    pub pairs: PathBuf,
    /// True links: CSV with header `a_index,b_index` (0-based).
    #[arg(long, value_name = "CSV")]
    pub truth: PathBuf,
    /// Also print precision and recall of the pairs scoring at least each threshold of
    /// START:END:STEP, e.g. 0.5:0.95:0.05. For greedy links this equals re-solving at each
    /// threshold.
    #[arg(long, value_name = "START:END:STEP")]
    pub thresholds: Option<String>,
    /// Records in data set a and b, as A,B: adds the reduction ratio of the pairs (read as a
    /// candidate set, e.g. from `--solver none`).
    #[arg(long, value_name = "A,B")]
    pub records: Option<String>,
}

/// A CSV of pair indices (and maybe scores), with the file's name and line in every error.
pub(crate) fn read_pairs(path: &Path, with_scores: bool) -> anyhow::Result<Vec<Candidate>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header", path.display()))?
        .clone();
    let names: Vec<&str> = headers.iter().map(str::trim).collect();
    let expected: &[&str] = if with_scores {
        &["a_index", "b_index", "score"]
    } else {
        &["a_index", "b_index"]
    };
    if names.len() < expected.len() || names[..expected.len()] != *expected {
        bail!(
            "{}: header is {:?}, expected it to start with {}",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(","),
            expected.join(",")
        );
    }
    let mut pairs = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: malformed csv", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let index = |i: usize| -> anyhow::Result<usize> {
            field(i).parse().map_err(|_| {
                anyhow::anyhow!(
                    "{} line {line}: {} {:?} is not a non-negative integer",
                    path.display(),
                    expected[i],
                    field(i)
                )
            })
        };
        let (a, b) = (index(0)?, index(1)?);
        let score = if with_scores {
            match field(2).parse::<f64>() {
                Ok(s) if (0.0..=1.0).contains(&s) => s,
                _ => bail!(
                    "{} line {line}: score {:?} is not a number in [0, 1]",
                    path.display(),
                    field(2)
                ),
            }
        } else {
            1.0
        };
        pairs.push(Candidate { a, b, score });
    }
    Ok(pairs)
}

fn parse_sweep(spec: &str) -> anyhow::Result<Vec<f64>> {
    let parts: Vec<&str> = spec.split(':').collect();
    let numbers: Option<Vec<f64>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    match numbers.as_deref() {
        Some(&[start, end, step]) => Ok(
            threshold_sweep(start, end, step).with_context(|| format!("--thresholds {spec}"))?
        ),
        _ => bail!("--thresholds {spec:?}: expected START:END:STEP, e.g. 0.5:0.95:0.05"),
    }
}

fn parse_records(spec: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = spec
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed.ok_or_else(|| {
        anyhow::anyhow!("--records {spec:?}: expected A,B record counts, e.g. 5000,5000")
    })
}

/// Runs `blindlink evaluate`.
///
/// # Errors
/// Unreadable files, a wrong header, a malformed line (named by file and line), a bad
/// `--thresholds` or `--records` value.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let sweep = args.thresholds.as_deref().map(parse_sweep).transpose()?;
    let records = args.records.as_deref().map(parse_records).transpose()?;
    let pairs = read_pairs(&args.pairs, sweep.is_some())?;
    let truth: Vec<(usize, usize)> = read_pairs(&args.truth, false)?
        .into_iter()
        .map(|c| (c.a, c.b))
        .collect();
    let predicted: Vec<(usize, usize)> = pairs.iter().map(|c| (c.a, c.b)).collect();
    let quality = LinkageQuality::measure(&predicted, &truth);
    let (na, nb) = records.unwrap_or((0, 0));
    let blocking = BlockingQuality::measure(&predicted, &truth, na, nb);
    println!("pairs            {}", blocking.candidate_pairs);
    println!("true links       {}", blocking.true_pairs);
    println!("true positives   {}", quality.true_positives);
    println!("false positives  {}", quality.false_positives);
    println!("false negatives  {}", quality.false_negatives);
    println!("precision        {:.4}", quality.precision());
    println!("recall           {:.4}", quality.recall());
    println!("f-measure        {:.4}", quality.f_measure());
    println!("pairs completeness {:.4}", blocking.pairs_completeness());
    println!("pairs quality    {:.4}", blocking.pairs_quality());
    if records.is_some() {
        println!("reduction ratio  {:.6}", blocking.reduction_ratio());
    }
    if let Some(thresholds) = sweep {
        println!();
        println!("threshold  pairs  precision  recall  f-measure");
        for (t, q) in quality_by_threshold(&pairs, &truth, &thresholds) {
            println!(
                "{t:>9.3}  {:>5}  {:>9.4}  {:>6.4}  {:>9.4}",
                q.true_positives + q.false_positives,
                q.precision(),
                q.recall(),
                q.f_measure()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_specs() {
        let check = |spec: &str, expected: Result<Vec<f64>, &str>| {
            let got = parse_sweep(spec).map_err(|e| format!("{e:#}"));
            assert_eq!(got, expected.map_err(str::to_string), "{spec}");
        };
        check("0.7:0.8:0.05", Ok(vec![0.7, 0.75, 0.8]));
        check(
            "0.7:0.8",
            Err("--thresholds \"0.7:0.8\": expected START:END:STEP, e.g. 0.5:0.95:0.05"),
        );
        check(
            "a:b:c",
            Err("--thresholds \"a:b:c\": expected START:END:STEP, e.g. 0.5:0.95:0.05"),
        );
        check(
            "0.9:0.8:0.05",
            Err(
                "--thresholds 0.9:0.8:0.05: threshold sweep 0.9:0.8:0.05 must have 0 < start <= end <= 1 and step > 0",
            ),
        );
        assert_eq!(parse_records("10, 20").unwrap(), (10, 20));
        assert_eq!(
            parse_records("10").unwrap_err().to_string(),
            "--records \"10\": expected A,B record counts, e.g. 5000,5000"
        );
    }
}
