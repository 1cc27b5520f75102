//! Linkage quality against a truth set: precision, recall and F-measure of links; pairs
//! completeness, reduction ratio and pairs quality of a candidate (blocking) step; and precision
//! and recall over a sweep of thresholds.
//!
//! Conventions: a ratio whose denominator is zero is reported as 0 (nothing predicted has no
//! precision; an empty truth set has no recall). Pairs are deduplicated before counting.

use std::collections::HashSet;

use crate::{Candidate, MatchingError};

/// Counts and ratios of predicted links against true links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkageQuality {
    /// Predicted links that are true.
    pub true_positives: u64,
    /// Predicted links that are not true.
    pub false_positives: u64,
    /// True links not predicted.
    pub false_negatives: u64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl LinkageQuality {
    /// Compares `predicted` with `truth`.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::LinkageQuality;
    /// let q = LinkageQuality::measure(&[(0, 0), (1, 2), (2, 1)], &[(0, 0), (1, 1), (2, 1), (3, 3)]);
    /// assert_eq!((q.precision(), q.recall()), (2.0 / 3.0, 0.5));
    /// assert_eq!(q.f_measure(), 2.0 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5));
    /// ```
    pub fn measure(predicted: &[(usize, usize)], truth: &[(usize, usize)]) -> Self {
        let truth: HashSet<_> = truth.iter().copied().collect();
        let predicted: HashSet<_> = predicted.iter().copied().collect();
        let true_positives = predicted.intersection(&truth).count() as u64;
        Self {
            true_positives,
            false_positives: predicted.len() as u64 - true_positives,
            false_negatives: truth.len() as u64 - true_positives,
        }
    }

    /// `tp / (tp + fp)`.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `tp / (tp + fn)`.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Harmonic mean of precision and recall.
    pub fn f_measure(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// How well links were flagged as suspected wrong-person links (`validate`), against the
/// truth: of the links to the wrong person, how many were flagged (the detection rate), and of
/// the links to the right person, how many were flagged all the same (the false-flag rate).
/// The one measure the demo, the protocol's example and its tests share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagQuality {
    /// Links to the wrong person.
    pub wrong: u64,
    /// Of them, flagged.
    pub wrong_flagged: u64,
    /// Links to the right person.
    pub right: u64,
    /// Of them, flagged (false flags).
    pub right_flagged: u64,
}

impl FlagQuality {
    /// Counts `links`, each `(right_person, flagged)`; links whose truth is unknown are left
    /// out by the caller.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::FlagQuality;
    /// let q = FlagQuality::measure([(false, true), (false, false), (true, false), (true, true)]);
    /// assert_eq!((q.wrong, q.wrong_flagged, q.right, q.right_flagged), (2, 1, 2, 1));
    /// assert_eq!((q.detection_rate(), q.false_flag_rate()), (0.5, 0.5));
    /// ```
    pub fn measure(links: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut q = Self::default();
        for (right, flagged) in links {
            if right {
                q.right += 1;
                q.right_flagged += u64::from(flagged);
            } else {
                q.wrong += 1;
                q.wrong_flagged += u64::from(flagged);
            }
        }
        q
    }

    /// Flagged wrong-person links / wrong-person links (0 when there are none).
    #[must_use]
    pub fn detection_rate(&self) -> f64 {
        ratio(self.wrong_flagged, self.wrong)
    }

    /// Flagged right-person links / right-person links (0 when there are none).
    #[must_use]
    pub fn false_flag_rate(&self) -> f64 {
        ratio(self.right_flagged, self.right)
    }
}

/// Quality of a candidate-generation (blocking) step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingQuality {
    /// Candidate pairs produced.
    pub candidate_pairs: u64,
    /// Candidate pairs that are true links.
    pub true_candidate_pairs: u64,
    /// True links.
    pub true_pairs: u64,
    /// All pairs `|a| * |b|`.
    pub total_pairs: u64,
}

impl BlockingQuality {
    /// Compares the candidate pairs with `truth` for data sets of `records_a` × `records_b`.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::BlockingQuality;
    /// let q = BlockingQuality::measure(&[(0, 0), (0, 1), (1, 1)], &[(0, 0), (2, 2)], 10, 10);
    /// assert_eq!(q.pairs_completeness(), 0.5);
    /// assert_eq!(q.reduction_ratio(), 0.97);
    /// assert_eq!(q.pairs_quality(), 1.0 / 3.0);
    /// ```
    pub fn measure(
        candidates: &[(usize, usize)],
        truth: &[(usize, usize)],
        records_a: usize,
        records_b: usize,
    ) -> Self {
        let truth: HashSet<_> = truth.iter().copied().collect();
        let candidates: HashSet<_> = candidates.iter().copied().collect();
        Self {
            candidate_pairs: candidates.len() as u64,
            true_candidate_pairs: candidates.intersection(&truth).count() as u64,
            true_pairs: truth.len() as u64,
            total_pairs: records_a as u64 * records_b as u64,
        }
    }

    /// Share of true links among the candidates' pairs: `true candidates / true links`.
    pub fn pairs_completeness(&self) -> f64 {
        ratio(self.true_candidate_pairs, self.true_pairs)
    }

    /// Share of all pairs removed: `1 - candidates / (|a| |b|)`.
    pub fn reduction_ratio(&self) -> f64 {
        if self.total_pairs == 0 {
            0.0
        } else {
            1.0 - ratio(self.candidate_pairs, self.total_pairs)
        }
    }

    /// Share of candidates that are true links.
    pub fn pairs_quality(&self) -> f64 {
        ratio(self.true_candidate_pairs, self.candidate_pairs)
    }
}

/// Evenly spaced thresholds `start, start + step, ..., <= end` (computed as `start + i * step`
/// and rounded to 12 decimals, so `0.5:0.95:0.05` ends at exactly 0.95).
///
/// # Errors
/// [`MatchingError::InvalidSweep`] unless `0 < start <= end <= 1` and `step > 0`.
///
/// # Example
/// ```
/// let t = blindlink_matching::threshold_sweep(0.5, 0.95, 0.05)?;
/// assert_eq!(t.len(), 10);
/// assert_eq!((t[0], t[1], t[9]), (0.5, 0.55, 0.95));
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
pub fn threshold_sweep(start: f64, end: f64, step: f64) -> Result<Vec<f64>, MatchingError> {
    if !(start > 0.0 && start <= end && end <= 1.0 && step > 0.0 && step.is_finite()) {
        return Err(MatchingError::InvalidSweep { start, end, step });
    }
    let steps = ((end - start) / step + 1e-9).floor() as usize;
    Ok((0..=steps)
        .map(|i| ((start + i as f64 * step) * 1e12).round() / 1e12)
        .collect())
}

/// Precision and recall of the links scoring at least each threshold. For greedy links this is
/// exactly what re-solving at each threshold would give (see [`crate::greedy`]).
pub fn quality_by_threshold(
    links: &[Candidate],
    truth: &[(usize, usize)],
    thresholds: &[f64],
) -> Vec<(f64, LinkageQuality)> {
    thresholds
        .iter()
        .map(|&t| {
            let kept: Vec<(usize, usize)> = links
                .iter()
                .filter(|c| c.score >= t)
                .map(|c| (c.a, c.b))
                .collect();
            (t, LinkageQuality::measure(&kept, truth))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        predicted: &[(usize, usize)],
        truth: &[(usize, usize)],
        expected: (u64, u64, u64, f64, f64),
    ) {
        let q = LinkageQuality::measure(predicted, truth);
        let got = (
            q.true_positives,
            q.false_positives,
            q.false_negatives,
            q.precision(),
            q.recall(),
        );
        assert_eq!(got, expected, "{predicted:?} vs {truth:?}");
    }

    #[test]
    fn flag_quality() {
        let check = |links: &[(bool, bool)], expected: (u64, u64, u64, u64, f64, f64)| {
            let q = FlagQuality::measure(links.iter().copied());
            let got = (
                q.wrong,
                q.wrong_flagged,
                q.right,
                q.right_flagged,
                q.detection_rate(),
                q.false_flag_rate(),
            );
            assert_eq!(got, expected, "{links:?}");
        };
        check(&[], (0, 0, 0, 0, 0.0, 0.0));
        check(&[(false, true)], (1, 1, 0, 0, 1.0, 0.0));
        check(&[(true, true), (true, false)], (0, 0, 2, 1, 0.0, 0.5));
        check(
            &[(false, true), (false, false), (false, true), (true, false)],
            (3, 2, 1, 0, 2.0 / 3.0, 0.0),
        );
    }

    #[test]
    fn linkage_quality() {
        check(&[], &[], (0, 0, 0, 0.0, 0.0));
        check(&[(0, 0)], &[], (0, 1, 0, 0.0, 0.0));
        check(&[], &[(0, 0)], (0, 0, 1, 0.0, 0.0));
        check(&[(0, 0), (1, 1)], &[(0, 0), (1, 1)], (2, 0, 0, 1.0, 1.0));
        check(&[(0, 0), (0, 0)], &[(0, 0), (1, 1)], (1, 0, 1, 1.0, 0.5));
        check(&[(0, 1), (1, 0)], &[(0, 0), (1, 1)], (0, 2, 2, 0.0, 0.0));
        check(
            &[(0, 0), (1, 0), (2, 0), (3, 3)],
            &[(0, 0), (3, 3)],
            (2, 2, 0, 0.5, 1.0),
        );
        assert_eq!(LinkageQuality::measure(&[], &[]).f_measure(), 0.0);
    }

    #[test]
    fn blocking_quality_edge_cases() {
        let q = BlockingQuality::measure(&[], &[], 0, 0);
        assert_eq!(
            (
                q.pairs_completeness(),
                q.reduction_ratio(),
                q.pairs_quality()
            ),
            (0.0, 0.0, 0.0)
        );
        let q = BlockingQuality::measure(&[(0, 0), (0, 1), (1, 0), (1, 1)], &[(1, 1)], 2, 2);
        assert_eq!(
            (
                q.pairs_completeness(),
                q.reduction_ratio(),
                q.pairs_quality()
            ),
            (1.0, 0.0, 0.25)
        );
    }

    #[test]
    fn sweeps() {
        let check = |s: f64, e: f64, st: f64, expected: Result<Vec<f64>, &str>| {
            let got = threshold_sweep(s, e, st).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_string), "{s}:{e}:{st}");
        };
        check(0.7, 0.8, 0.05, Ok(vec![0.7, 0.75, 0.8]));
        check(0.5, 0.5, 0.1, Ok(vec![0.5]));
        check(0.1, 0.35, 0.1, Ok(vec![0.1, 0.2, 0.3]));
        check(
            0.0,
            0.5,
            0.1,
            Err("threshold sweep 0:0.5:0.1 must have 0 < start <= end <= 1 and step > 0"),
        );
        check(
            0.6,
            0.5,
            0.1,
            Err("threshold sweep 0.6:0.5:0.1 must have 0 < start <= end <= 1 and step > 0"),
        );
        check(
            0.5,
            0.9,
            0.0,
            Err("threshold sweep 0.5:0.9:0 must have 0 < start <= end <= 1 and step > 0"),
        );
        let links = [
            Candidate {
                a: 0,
                b: 0,
                score: 0.9,
            },
            Candidate {
                a: 1,
                b: 2,
                score: 0.75,
            },
            Candidate {
                a: 2,
                b: 2,
                score: 0.7,
            },
        ];
        let table = quality_by_threshold(&links, &[(0, 0), (2, 2)], &[0.7, 0.8, 0.95]);
        let pr: Vec<_> = table
            .iter()
            .map(|(t, q)| (*t, q.precision(), q.recall()))
            .collect();
        assert_eq!(
            pr,
            [(0.7, 2.0 / 3.0, 1.0), (0.8, 1.0, 0.5), (0.95, 0.0, 0.0)]
        );
    }
}
