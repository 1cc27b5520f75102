//! `evaluate`: linkage quality of predicted pairs against true pairs, with the numbers
//! `blindlink evaluate` prints.

use anyhow::Context;
use blindlink_matching::{
    BlockingQuality, Candidate, LinkageQuality, quality_by_threshold, threshold_sweep,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{Kind, OrRaise};

/// Precision, recall and F of `predicted` (a, b indices, optional scores) against `truth`;
/// the pairs' blocking figures; with `records` the reduction ratio; with `thresholds`
/// (start, end, step) the quality at each threshold as `sweep`.
#[pyfunction]
#[pyo3(signature = (a, b, scores, truth_a, truth_b, thresholds=None, records=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate<'py>(
    py: Python<'py>,
    a: Vec<usize>,
    b: Vec<usize>,
    scores: Option<Vec<f64>>,
    truth_a: Vec<usize>,
    truth_b: Vec<usize>,
    thresholds: Option<(f64, f64, f64)>,
    records: Option<(usize, usize)>,
) -> PyResult<Bound<'py, PyDict>> {
    let sweep = thresholds
        .map(|(start, end, step)| {
            threshold_sweep(start, end, step)
                .with_context(|| format!("thresholds {start}:{end}:{step}"))
        })
        .transpose()
        .or_raise(Kind::Input)?;
    let predicted: Vec<(usize, usize)> = a.iter().copied().zip(b.iter().copied()).collect();
    let truth: Vec<(usize, usize)> = truth_a.into_iter().zip(truth_b).collect();
    let quality = LinkageQuality::measure(&predicted, &truth);
    let (na, nb) = records.unwrap_or((0, 0));
    let blocking = BlockingQuality::measure(&predicted, &truth, na, nb);
    let out = PyDict::new(py);
    out.set_item("pairs", blocking.candidate_pairs)?;
    out.set_item("true_links", blocking.true_pairs)?;
    out.set_item("true_positives", quality.true_positives)?;
    out.set_item("false_positives", quality.false_positives)?;
    out.set_item("false_negatives", quality.false_negatives)?;
    out.set_item("precision", quality.precision())?;
    out.set_item("recall", quality.recall())?;
    out.set_item("f_measure", quality.f_measure())?;
    out.set_item("pairs_completeness", blocking.pairs_completeness())?;
    out.set_item("pairs_quality", blocking.pairs_quality())?;
    if records.is_some() {
        out.set_item("reduction_ratio", blocking.reduction_ratio())?;
    }
    if let Some(thresholds) = sweep {
        let scores = scores.ok_or_else(|| {
            crate::errors::InputError::new_err("thresholds: the pairs have no scores")
        })?;
        let pairs: Vec<Candidate> = predicted
            .iter()
            .zip(&scores)
            .map(|(&(a, b), &score)| Candidate { a, b, score })
            .collect();
        let rows: Vec<(f64, u64, f64, f64, f64)> =
            quality_by_threshold(&pairs, &truth, &thresholds)
                .into_iter()
                .map(|(t, q)| {
                    (
                        t,
                        q.true_positives + q.false_positives,
                        q.precision(),
                        q.recall(),
                        q.f_measure(),
                    )
                })
                .collect();
        out.set_item("sweep", rows)?;
    }
    Ok(out)
}
