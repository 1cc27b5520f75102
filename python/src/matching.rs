//! `match`: Dice candidates between two CLK sets, blocked and solved as `blindlink match`
//! does (same library calls, same order), returned as arrays instead of a pairs file.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{Context, bail};
use blindlink_cli::commands::matching::parse_blocking;
use blindlink_encoding::format::read_clks;
use blindlink_matching::{
    BlockingKey, Candidate, CandidateSearch, ClkStore, DEFAULT_OPTIMAL_CELL_LIMIT, DiceThreshold,
    LshBlocker, greedy, optimal,
};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::errors::{Kind, OrRaise};

/// Reads a CLK file (anonlink JSON or blindlink binary) as `blindlink match --a` reads it:
/// the CLK bytes back to back, their count and the bytes per CLK. `side` ("a", "b" or "")
/// names it in errors as the CLI does.
#[pyfunction]
#[pyo3(signature = (path, side))]
pub(crate) fn read_clk_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    side: &str,
) -> PyResult<(Bound<'py, PyByteArray>, usize, usize)> {
    let clks = py
        .detach(|| -> anyhow::Result<_> {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            // Named as `blindlink match` names its inputs (`a.json (--a)`), else by path.
            let name = if side.is_empty() {
                path.display().to_string()
            } else {
                format!("{} (--{side})", path.display())
            };
            let clks = read_clks(file).with_context(|| name.clone())?;
            if clks.is_empty() {
                bail!("{name}: the file holds no clks");
            }
            Ok(clks)
        })
        .or_raise(Kind::Input)?;
    Ok((
        PyByteArray::new(py, clks.as_bytes()),
        clks.len(),
        clks.bytes_per_clk(),
    ))
}

fn store(bytes: &[u8], width: usize, name: &str) -> anyhow::Result<ClkStore> {
    if width == 0 || bytes.is_empty() {
        bail!("{name}: holds no clks");
    }
    if !bytes.len().is_multiple_of(width) {
        bail!(
            "{name}: {} bytes are not a whole number of {width}-byte clks",
            bytes.len()
        );
    }
    let mut store = ClkStore::new(width * 8).with_context(|| name.to_owned())?;
    store.reserve(bytes.len() / width);
    for clk in bytes.chunks_exact(width) {
        store.push(clk).with_context(|| name.to_owned())?;
    }
    Ok(store)
}

/// The links (or with solver `none` every candidate) of `a` × `b`: a indices, b indices,
/// scores, and the search counts (`comparisons`, `considered_pairs`, `candidates`).
type Matched = (Vec<usize>, Vec<usize>, Vec<f64>, (u64, u64, u64));

/// Matches two CLK sets (each `width` bytes per CLK, back to back), named `a_name` and
/// `b_name` in errors.
#[pyfunction]
#[pyo3(signature = (a, a_width, a_name, b, b_width, b_name, threshold, solver="greedy", blocking=None, top_k=None, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn match_clks(
    py: Python<'_>,
    a: &[u8],
    a_width: usize,
    a_name: &str,
    b: &[u8],
    b_width: usize,
    b_name: &str,
    threshold: f64,
    solver: &str,
    blocking: Option<&str>,
    top_k: Option<usize>,
    threads: Option<usize>,
) -> PyResult<Matched> {
    let threshold = DiceThreshold::new(threshold)
        .context("threshold")
        .or_raise(Kind::Input)?;
    let mut search = CandidateSearch::new(threshold);
    if let Some(k) = top_k {
        search = search.top_k(k).context("top_k").or_raise(Kind::Input)?;
    }
    if !matches!(solver, "greedy" | "optimal" | "none") {
        return Err(crate::errors::InputError::new_err(format!(
            "solver {solver:?}: expected \"greedy\", \"optimal\" or \"none\""
        )));
    }
    let blocking = blocking
        .map(parse_blocking)
        .transpose()
        .or_raise(Kind::Input)?;
    let a = store(a, a_width, a_name).or_raise(Kind::Input)?;
    let b = store(b, b_width, b_name).or_raise(Kind::Input)?;
    if a.filter_bits() != b.filter_bits() {
        return Err(crate::errors::InputError::new_err(format!(
            "filter lengths differ: {a_name} has {}-bit filters, {b_name} has {}-bit filters",
            a.filter_bits(),
            b.filter_bits()
        )));
    }
    py.detach(|| -> anyhow::Result<Matched> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .build()
            .context("cannot start worker threads")?;
        let mut kept: Vec<Candidate> = Vec::new();
        let mut sink = |batch: &[Candidate]| {
            kept.extend_from_slice(batch);
            ControlFlow::<()>::Continue(())
        };
        let stats = pool.install(|| -> anyhow::Result<_> {
            match blocking {
                None => Ok(search.stream(&a, &b, &mut sink)?),
                Some((params, seed)) => {
                    let mut key = [0u8; 32];
                    key[..8].copy_from_slice(&seed.to_le_bytes());
                    let blocker = LshBlocker::new(&BlockingKey::new(key), params, a.filter_bits())
                        .context("blocking")?;
                    let blocked = blocker.block(&a, &b)?;
                    Ok(search.stream_blocked(&a, &b, &blocked, &mut sink)?)
                }
            }
        })?;
        let links = match solver {
            "greedy" => greedy(&kept)?,
            "optimal" => optimal(&kept, DEFAULT_OPTIMAL_CELL_LIMIT)?,
            _ => kept,
        };
        Ok((
            links.iter().map(|c| c.a).collect(),
            links.iter().map(|c| c.b).collect(),
            links.iter().map(|c| c.score).collect(),
            (stats.comparisons, stats.considered_pairs, stats.candidates),
        ))
    })
    .or_raise(Kind::Input)
}
