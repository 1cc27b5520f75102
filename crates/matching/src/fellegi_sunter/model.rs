//! The fitted model (`model.json`), match weights, probabilities, flags and explanations.

use serde::{Deserialize, Serialize};

use super::comparison::{ComparisonLevel, Comparisons, FieldComparison, Level};
use crate::MatchingError;

/// The default flagging threshold on the match probability.
pub const DEFAULT_PROBABILITY_THRESHOLD: f64 = 0.5;

/// One level of one field in the fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelModel {
    /// As declared.
    pub label: String,
    /// As declared.
    pub min_dice: f64,
    /// As declared.
    pub veto: bool,
    /// P(level | match).
    pub m: f64,
    /// P(level | non-match).
    pub u: f64,
    /// The match weight `log2(m / u)`, with adjacent levels pooled where the estimate would
    /// weigh a better level below a worse one (so agreement is monotone; see
    /// [`FellegiSunterModel::score`]).
    pub weight: f64,
    /// Pairs of the fitted histogram at this level.
    pub pairs: u64,
}

/// One field in the fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldModel {
    /// The field's name.
    pub field: String,
    /// Its levels, best first.
    pub levels: Vec<LevelModel>,
    /// m was given, not estimated.
    pub fixed_m: bool,
    /// u was given, not estimated.
    pub fixed_u: bool,
}

/// How the fit went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Pairs in the histogram.
    pub pairs: u64,
    /// Distinct agreement patterns.
    pub patterns: u64,
    /// EM iterations run.
    pub iterations: u32,
    /// Stopped because no parameter moved by more than the tolerance.
    pub converged: bool,
    /// The largest parameter change of the last iteration.
    pub last_change: f64,
    /// The log-likelihood of the histogram under the final parameters (natural log).
    pub log_likelihood: f64,
    /// What the data could not tell (see [`super::estimate`]).
    pub warnings: Vec<String>,
}

/// A fitted Fellegi–Sunter model: the prior and every field's m/u table. Serialises to the
/// `model.json` of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FellegiSunterModel {
    /// The prior probability λ that a compared pair is a match.
    pub lambda: f64,
    /// One per compared field, in order.
    pub fields: Vec<FieldModel>,
    /// How the fit went.
    pub fit: FitReport,
}

/// A pair's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScore {
    /// `log2(λ / (1 - λ))` plus every field's weight.
    pub match_weight: f64,
    /// `2^w / (1 + 2^w)` of the match weight: the posterior match probability.
    pub probability: f64,
    /// The first field (by index) whose level vetoes, if any.
    pub veto: Option<usize>,
}

impl PairScore {
    /// Flagged for review: the probability is below `threshold` or a field vetoes.
    #[must_use]
    pub fn flagged(&self, threshold: f64) -> bool {
        self.veto.is_some() || self.probability < threshold
    }
}

/// One field's part in a pair's score: a bar of the waterfall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldContribution {
    /// The field.
    pub field: String,
    /// The level's label, or `missing`.
    pub level: String,
    /// The level's weight (0 when missing).
    pub weight: f64,
    /// The level's m (`None` when missing).
    pub m: Option<f64>,
    /// The level's u (`None` when missing).
    pub u: Option<f64>,
    /// The level vetoes.
    pub veto: bool,
}

/// Why a pair scored as it did: the prior, each field's level and weight, the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairExplanation {
    /// `log2(λ / (1 - λ))`.
    pub prior_weight: f64,
    /// One per field, in order.
    pub fields: Vec<FieldContribution>,
    /// The prior plus every field's weight, summed in that order.
    pub match_weight: f64,
    /// The match probability.
    pub probability: f64,
}

impl PairExplanation {
    /// Flagged for review (see [`PairScore::flagged`]).
    #[must_use]
    pub fn flagged(&self, threshold: f64) -> bool {
        self.fields.iter().any(|f| f.veto) || self.probability < threshold
    }

    /// Why the pair is flagged, one reason a line; empty when it is not.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::fellegi_sunter::*;
    /// let comparisons = Comparisons::new(vec![
    ///     FieldComparison::for_token_kind("name", TokenKind::QGram),
    ///     FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
    /// ])?;
    /// let model = FellegiSunterModel::fixed(&comparisons, 0.9, &[
    ///     (vec![0.9, 0.05, 0.03, 0.02], vec![0.01, 0.02, 0.07, 0.9]),
    ///     (vec![0.95, 0.04, 0.01], vec![0.001, 0.01, 0.989]),
    /// ])?;
    /// let why = model.explain(&[Level::at(0), Level::at(2)])?;
    /// assert_eq!(why.reasons(0.5), ["field 'dob' is at level 'different', which vetoes"]);
    /// # Ok::<(), blindlink_matching::MatchingError>(())
    /// ```
    #[must_use]
    pub fn reasons(&self, threshold: f64) -> Vec<String> {
        let mut out: Vec<String> = self
            .fields
            .iter()
            .filter(|f| f.veto)
            .map(|f| {
                format!(
                    "field '{}' is at level '{}', which vetoes",
                    f.field, f.level
                )
            })
            .collect();
        if self.probability < threshold {
            out.push(format!(
                "match probability {:.4} is below the threshold {threshold}",
                self.probability
            ));
        }
        out
    }
}

/// `2^w / (1 + 2^w)` without overflow.
pub(crate) fn probability_of_weight(weight: f64) -> f64 {
    let log_odds = weight * std::f64::consts::LN_2;
    if log_odds >= 0.0 {
        1.0 / (1.0 + (-log_odds).exp())
    } else {
        let e = log_odds.exp();
        e / (1.0 + e)
    }
}

impl FellegiSunterModel {
    /// A model with λ, m and u given, not estimated: `probabilities[f] = (m, u)` per field.
    ///
    /// # Errors
    /// As [`super::estimate`] with everything fixed.
    pub fn fixed(
        comparisons: &Comparisons,
        lambda: f64,
        probabilities: &[(Vec<f64>, Vec<f64>)],
    ) -> Result<Self, MatchingError> {
        if probabilities.len() != comparisons.fields.len() {
            return Err(MatchingError::FellegiSunter {
                reason: format!(
                    "{} fields of m/u given, expected one per compared field ({})",
                    probabilities.len(),
                    comparisons.fields.len()
                ),
            });
        }
        let settings = super::EmSettings {
            fixed_lambda: Some(lambda),
            fixed: comparisons
                .fields
                .iter()
                .zip(probabilities)
                .map(|(c, (m, u))| super::FixedProbabilities {
                    field: c.field.clone(),
                    m: Some(m.clone()),
                    u: Some(u.clone()),
                })
                .collect(),
            ..super::EmSettings::default()
        };
        super::estimate(comparisons, &super::PatternHistogram::new(), &settings)
    }

    /// The comparisons the model was fitted for.
    #[must_use]
    pub fn comparisons(&self) -> Comparisons {
        Comparisons {
            fields: self
                .fields
                .iter()
                .map(|f| FieldComparison {
                    field: f.field.clone(),
                    levels: f
                        .levels
                        .iter()
                        .map(|l| ComparisonLevel {
                            label: l.label.clone(),
                            min_dice: l.min_dice,
                            veto: l.veto,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// `log2(λ / (1 - λ))`.
    #[must_use]
    pub fn prior_weight(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// Sets every level's weight to `log2(m / u)`, pooling adjacent levels (pool adjacent
    /// violators on the likelihood ratio, m and u summed over the pool) wherever a better
    /// level would otherwise weigh less than a worse one. Raising a field's level then never
    /// lowers a pair's weight; an estimate that says otherwise comes from a rare level's noise
    /// (or a level that means little after the bucket blur), not from evidence that worse
    /// agreement is more typical of matches.
    pub(crate) fn set_monotone_weights(&mut self) {
        for field in &mut self.fields {
            // Blocks of levels: (first level, sum m, sum u).
            let mut blocks: Vec<(usize, f64, f64)> = Vec::new();
            for (l, level) in field.levels.iter().enumerate() {
                blocks.push((l, level.m, level.u));
                while blocks.len() >= 2 {
                    let (_, m2, u2) = blocks[blocks.len() - 1];
                    let (start, m1, u1) = blocks[blocks.len() - 2];
                    // A worse block with a higher ratio than the better one before it.
                    if m2 * u1 > m1 * u2 {
                        blocks.truncate(blocks.len() - 2);
                        blocks.push((start, m1 + m2, u1 + u2));
                    } else {
                        break;
                    }
                }
            }
            for (b, &(start, m, u)) in blocks.iter().enumerate() {
                let end = blocks.get(b + 1).map_or(field.levels.len(), |n| n.0);
                let weight = (m / u).log2();
                for level in &mut field.levels[start..end] {
                    level.weight = weight;
                }
            }
        }
    }

    fn check_pattern(&self, pattern: &[Level]) -> Result<(), MatchingError> {
        super::comparison::check_pattern(
            self.fields
                .iter()
                .map(|f| (f.field.as_str(), f.levels.len())),
            pattern,
        )
    }

    /// Scores one pair from its agreement pattern: the match weight (prior plus the weight of
    /// each present field's level, missing fields adding 0), the probability, and the first
    /// vetoing field.
    ///
    /// # Errors
    /// [`MatchingError::FellegiSunter`] when the pattern does not fit the model.
    pub fn score(&self, pattern: &[Level]) -> Result<PairScore, MatchingError> {
        self.check_pattern(pattern)?;
        let mut weight = self.prior_weight();
        let mut veto = None;
        for (f, (field, level)) in self.fields.iter().zip(pattern).enumerate() {
            if let Some(l) = level.index() {
                let level = &field.levels[l];
                weight += level.weight;
                if level.veto && veto.is_none() {
                    veto = Some(f);
                }
            }
        }
        Ok(PairScore {
            match_weight: weight,
            probability: probability_of_weight(weight),
            veto,
        })
    }

    /// The waterfall of one pair: each field's level and weight, adding up (in order, from
    /// the prior) to exactly [`PairScore::match_weight`].
    ///
    /// # Errors
    /// As [`FellegiSunterModel::score`].
    pub fn explain(&self, pattern: &[Level]) -> Result<PairExplanation, MatchingError> {
        self.check_pattern(pattern)?;
        let prior_weight = self.prior_weight();
        let mut match_weight = prior_weight;
        let fields = self
            .fields
            .iter()
            .zip(pattern)
            .map(|(field, level)| match level.index() {
                Some(l) => {
                    let level = &field.levels[l];
                    match_weight += level.weight;
                    FieldContribution {
                        field: field.field.clone(),
                        level: level.label.clone(),
                        weight: level.weight,
                        m: Some(level.m),
                        u: Some(level.u),
                        veto: level.veto,
                    }
                }
                None => FieldContribution {
                    field: field.field.clone(),
                    level: "missing".into(),
                    weight: 0.0,
                    m: None,
                    u: None,
                    veto: false,
                },
            })
            .collect();
        Ok(PairExplanation {
            prior_weight,
            fields,
            match_weight,
            probability: probability_of_weight(match_weight),
        })
    }

    /// The model as pretty JSON (`model.json`).
    ///
    /// # Errors
    /// [`MatchingError::FellegiSunter`] if a number cannot be written (not finite).
    pub fn to_json(&self) -> Result<String, MatchingError> {
        serde_json::to_string_pretty(self).map_err(|e| MatchingError::FellegiSunter {
            reason: format!("cannot write the model as json: {e}"),
        })
    }

    /// A model read back from [`FellegiSunterModel::to_json`]'s output, checked.
    ///
    /// # Errors
    /// [`MatchingError::FellegiSunter`] for text that is not such a model (with serde's line
    /// and column), or a model whose λ, m or u are not probabilities or whose levels are not
    /// a valid comparison.
    pub fn from_json(text: &str) -> Result<Self, MatchingError> {
        let model: Self = serde_json::from_str(text).map_err(|e| MatchingError::FellegiSunter {
            reason: format!("model json: {e}"),
        })?;
        let fail = |reason: String| MatchingError::FellegiSunter { reason };
        if !(model.lambda > 0.0 && model.lambda < 1.0) {
            return Err(fail(format!(
                "model json: lambda {} is not in (0, 1)",
                model.lambda
            )));
        }
        Comparisons::new(model.comparisons().fields)?;
        for field in &model.fields {
            for level in &field.levels {
                let probabilities =
                    level.m > 0.0 && level.m <= 1.0 && level.u > 0.0 && level.u <= 1.0;
                if !(probabilities && level.weight.is_finite()) {
                    return Err(fail(format!(
                        "model json: field '{}' level '{}' has m {}, u {}, weight {}; expected m and u in (0, 1] and a finite weight",
                        field.field, level.label, level.m, level.u, level.weight
                    )));
                }
            }
        }
        Ok(model)
    }
}
