//! EM estimation of the prior λ and each field's m and u over the histogram of agreement
//! patterns (one entry per distinct pattern with its count, so 100k pairs cost as much as
//! their few hundred distinct patterns).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::comparison::{Comparisons, Level};
use super::model::{FellegiSunterModel, FieldModel, FitReport, LevelModel};
use crate::MatchingError;

/// No probability is taken below this (nor λ above 1 minus it), so weights stay finite.
pub const PROBABILITY_FLOOR: f64 = 1e-9;

/// How many pairs share each agreement pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternHistogram {
    counts: BTreeMap<Vec<Level>, u64>,
    pairs: u64,
}

impl PatternHistogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one more pair with `pattern`.
    pub fn add(&mut self, pattern: &[Level]) {
        self.add_count(pattern, 1);
    }

    /// Counts `count` more pairs with `pattern`.
    pub fn add_count(&mut self, pattern: &[Level], count: u64) {
        if count == 0 {
            return;
        }
        match self.counts.get_mut(pattern) {
            Some(n) => *n += count,
            None => {
                self.counts.insert(pattern.to_vec(), count);
            }
        }
        self.pairs += count;
    }

    /// Number of pairs counted.
    #[must_use]
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// Number of distinct patterns.
    #[must_use]
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// No pair counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// The patterns and their counts, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&[Level], u64)> {
        self.counts.iter().map(|(p, &n)| (p.as_slice(), n))
    }

    /// The share of pairs at each of `levels` levels of field `field` among the pairs where
    /// it is not missing, with `pseudo_count` added to every level: u from pairs known to be
    /// non-matches (for example random pairs of this side's own records, which needs nothing
    /// from the peer), to fix in [`EmSettings::fixed`].
    #[must_use]
    pub fn level_shares(&self, field: usize, levels: usize, pseudo_count: f64) -> Vec<f64> {
        let mut counts = vec![pseudo_count.max(0.0); levels];
        for (pattern, n) in self.iter() {
            if let Some(i) = pattern.get(field).and_then(|l| l.index())
                && i < levels
            {
                counts[i] += n as f64;
            }
        }
        let total: f64 = counts.iter().sum();
        if total <= 0.0 {
            return vec![1.0 / levels as f64; levels];
        }
        counts.iter().map(|c| c / total).collect()
    }
}

/// m and/or u of one field given instead of estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedProbabilities {
    /// The field, as in its comparison.
    pub field: String,
    /// Per level (best first), summing to 1.
    #[serde(default)]
    pub m: Option<Vec<f64>>,
    /// Per level (best first), summing to 1.
    #[serde(default)]
    pub u: Option<Vec<f64>>,
}

/// How EM runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmSettings {
    /// Iteration cap (default 1,000).
    pub max_iterations: u32,
    /// Converged when no parameter (λ, any m or u) moves by more than this in one iteration
    /// (default 1e-6).
    pub tolerance: f64,
    /// Dirichlet pseudo-count added to every level of m and u, and to both classes of λ, in
    /// each M-step (default 0.5): the estimate is the posterior mode, so a level never
    /// observed gets a small probability instead of 0 (a finite weight), and a class with few
    /// pairs leans towards uniform.
    pub pseudo_count: f64,
    /// λ to start from (default 0.5).
    pub initial_lambda: f64,
    /// λ given instead of estimated.
    pub fixed_lambda: Option<f64>,
    /// m and/or u given instead of estimated, by field.
    pub fixed: Vec<FixedProbabilities>,
}

impl Default for EmSettings {
    fn default() -> Self {
        Self {
            max_iterations: 1000,
            tolerance: 1e-6,
            pseudo_count: 0.5,
            initial_lambda: 0.5,
            fixed_lambda: None,
            fixed: Vec::new(),
        }
    }
}

/// One field's probabilities during EM.
struct FieldState {
    m: Vec<f64>,
    u: Vec<f64>,
    fixed_m: bool,
    fixed_u: bool,
}

fn settings_error(reason: String) -> MatchingError {
    MatchingError::FellegiSunter { reason }
}

fn check_distribution(
    field: &str,
    what: &str,
    p: &[f64],
    levels: usize,
) -> Result<(), MatchingError> {
    let fail = |reason: String| MatchingError::InvalidComparison {
        field: field.to_owned(),
        reason,
    };
    if p.len() != levels {
        return Err(fail(format!(
            "fixed {what} has {} values, expected one per level ({levels})",
            p.len()
        )));
    }
    if p.iter().any(|x| !(x.is_finite() && *x >= 0.0 && *x <= 1.0)) {
        return Err(fail(format!("fixed {what} has a value outside [0, 1]")));
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(fail(format!("fixed {what} sums to {sum}, expected 1")));
    }
    Ok(())
}

/// Floors every entry at [`PROBABILITY_FLOOR`] and rescales to sum 1.
fn floor_and_normalise(p: &mut [f64]) {
    for x in p.iter_mut() {
        *x = x.max(PROBABILITY_FLOOR);
    }
    let sum: f64 = p.iter().sum();
    for x in p.iter_mut() {
        *x /= sum;
    }
}

/// Starting values that orient the two classes: m puts most mass on the best level, u on
/// the worst (each level a quarter of the one before), so EM starts with "match" meaning
/// agreement and does not swap the labels.
fn initial(levels: usize, best_first: bool) -> Vec<f64> {
    let mut p: Vec<f64> = (0..levels)
        .map(|i| {
            let steps = if best_first { i } else { levels - 1 - i };
            0.25f64.powi(i32::try_from(steps).unwrap_or(i32::MAX))
        })
        .collect();
    floor_and_normalise(&mut p);
    p
}

fn logistic(log_odds: f64) -> f64 {
    if log_odds >= 0.0 {
        1.0 / (1.0 + (-log_odds).exp())
    } else {
        let e = log_odds.exp();
        e / (1.0 + e)
    }
}

/// Estimates λ, m and u by EM over `histogram` and returns the fitted model.
///
/// # Model and assumptions
/// A pair is a match with probability λ; given its class, the fields' levels are independent
/// (conditional independence, the Fellegi–Sunter model); a missing field is missing at
/// random, so it is left out of both classes' likelihoods (weight 0) and out of its field's
/// m and u. Each iteration computes every pattern's match posterior (E-step) and sets λ, m and
/// u to the count-weighted shares plus [`EmSettings::pseudo_count`] (M-step: the posterior
/// mode under a symmetric Dirichlet prior). It stops when no parameter moves by more than
/// [`EmSettings::tolerance`], or after [`EmSettings::max_iterations`] (reported, not an
/// error). Fixed λ, m or u are kept as given.
///
/// What the data can and cannot tell is reported in [`FitReport::warnings`]: fewer than 3
/// fields (a two-class model of agreement patterns is identifiable only from 3 conditionally
/// independent fields on); few estimated non-matches (their u then rests on the prior: fix
/// u, e.g. from [`PatternHistogram::level_shares`] over random pairs of own records); a level
/// no pair reached, or a field where every pair agrees (their m and u are the pseudo-counts'
/// alone); no convergence.
///
/// # Errors
/// [`MatchingError::FellegiSunter`] when the settings are out of range, a pattern does not
/// fit the comparisons, or the histogram is empty while something is left to estimate;
/// [`MatchingError::InvalidComparison`] for a fixed m or u that is not a distribution over
/// the field's levels or names no compared field.
///
/// # Example
/// ```
/// use blindlink_matching::fellegi_sunter::*;
/// let comparisons = Comparisons::new(vec![
///     FieldComparison::for_token_kind("a", TokenKind::Exact),
///     FieldComparison::for_token_kind("b", TokenKind::Exact),
///     FieldComparison::for_token_kind("c", TokenKind::Exact),
/// ])?;
/// let (agree, differ) = (Level::at(0), Level::at(1));
/// let mut histogram = PatternHistogram::new();
/// histogram.add_count(&[agree, agree, agree], 900);
/// histogram.add_count(&[agree, agree, differ], 50);
/// histogram.add_count(&[differ, differ, differ], 100);
/// histogram.add_count(&[differ, agree, differ], 10);
/// let model = estimate(&comparisons, &histogram, &EmSettings::default())?;
/// assert!(model.fit.converged);
/// assert!(model.score(&[agree, agree, agree])?.probability > 0.99);
/// assert!(model.score(&[differ, differ, differ])?.probability < 0.01);
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
pub fn estimate(
    comparisons: &Comparisons,
    histogram: &PatternHistogram,
    settings: &EmSettings,
) -> Result<FellegiSunterModel, MatchingError> {
    if !(settings.tolerance.is_finite() && settings.tolerance > 0.0) {
        return Err(settings_error(format!(
            "tolerance {} is not a positive number",
            settings.tolerance
        )));
    }
    if !(settings.pseudo_count.is_finite() && settings.pseudo_count >= 0.0) {
        return Err(settings_error(format!(
            "pseudo_count {} is not a number >= 0",
            settings.pseudo_count
        )));
    }
    for (what, lambda) in [
        ("initial_lambda", Some(settings.initial_lambda)),
        ("fixed_lambda", settings.fixed_lambda),
    ] {
        if let Some(lambda) = lambda
            && !(lambda > 0.0 && lambda < 1.0)
        {
            return Err(settings_error(format!("{what} {lambda} is not in (0, 1)")));
        }
    }
    for fixed in &settings.fixed {
        if !comparisons.fields.iter().any(|f| f.field == fixed.field) {
            return Err(MatchingError::InvalidComparison {
                field: fixed.field.clone(),
                reason: "fixed m/u given for a field that is not compared".into(),
            });
        }
    }
    let mut fields: Vec<FieldState> = Vec::with_capacity(comparisons.fields.len());
    for comparison in &comparisons.fields {
        let levels = comparison.levels.len();
        let fixed = settings.fixed.iter().find(|f| f.field == comparison.field);
        let m = fixed.and_then(|f| f.m.clone());
        let u = fixed.and_then(|f| f.u.clone());
        if let Some(m) = &m {
            check_distribution(&comparison.field, "m", m, levels)?;
        }
        if let Some(u) = &u {
            check_distribution(&comparison.field, "u", u, levels)?;
        }
        let (fixed_m, fixed_u) = (m.is_some(), u.is_some());
        // Given values are kept as they are (only floored, so that weights stay finite).
        let floored = |p: Vec<f64>| p.into_iter().map(|x| x.max(PROBABILITY_FLOOR)).collect();
        let m = m.map_or_else(|| initial(levels, true), floored);
        let u = u.map_or_else(|| initial(levels, false), floored);
        fields.push(FieldState {
            m,
            u,
            fixed_m,
            fixed_u,
        });
    }
    for (pattern, _) in histogram.iter() {
        comparisons.check_pattern(pattern)?;
    }
    let everything_fixed =
        settings.fixed_lambda.is_some() && fields.iter().all(|f| f.fixed_m && f.fixed_u);
    if histogram.is_empty() && !everything_fixed {
        return Err(settings_error(
            "no pairs to estimate from (the pattern histogram is empty); give lambda, m and u in the config"
                .into(),
        ));
    }
    let floor = PROBABILITY_FLOOR;
    let mut lambda = settings
        .fixed_lambda
        .unwrap_or(settings.initial_lambda)
        .clamp(floor, 1.0 - floor);
    let alpha = settings.pseudo_count;
    let pairs = histogram.pairs() as f64;
    let patterns: Vec<(&[Level], f64)> = histogram.iter().map(|(p, n)| (p, n as f64)).collect();
    let mut iterations = 0;
    let mut converged = everything_fixed;
    let mut last_change = 0.0;
    // Per field and level: ln(m/u), refreshed every iteration.
    let mut log_ratio: Vec<Vec<f64>> = fields.iter().map(|f| vec![0.0; f.m.len()]).collect();
    let mut match_mass: Vec<Vec<f64>> = fields.iter().map(|f| vec![0.0; f.m.len()]).collect();
    let mut other_mass = match_mass.clone();
    while !converged && iterations < settings.max_iterations {
        iterations += 1;
        for (ratios, field) in log_ratio.iter_mut().zip(&fields) {
            for (r, (m, u)) in ratios.iter_mut().zip(field.m.iter().zip(&field.u)) {
                *r = (m / u).ln();
            }
        }
        for mass in match_mass.iter_mut().chain(other_mass.iter_mut()) {
            mass.fill(0.0);
        }
        let prior = (lambda / (1.0 - lambda)).ln();
        let mut matches = 0.0;
        for &(pattern, n) in &patterns {
            let mut log_odds = prior;
            for (f, level) in pattern.iter().enumerate() {
                if let Some(l) = level.index() {
                    log_odds += log_ratio[f][l];
                }
            }
            let p = logistic(log_odds);
            matches += n * p;
            for (f, level) in pattern.iter().enumerate() {
                if let Some(l) = level.index() {
                    match_mass[f][l] += n * p;
                    other_mass[f][l] += n * (1.0 - p);
                }
            }
        }
        let mut change: f64 = 0.0;
        if settings.fixed_lambda.is_none() {
            let next = ((matches + alpha) / (pairs + 2.0 * alpha)).clamp(floor, 1.0 - floor);
            change = change.max((next - lambda).abs());
            lambda = next;
        }
        for (f, field) in fields.iter_mut().enumerate() {
            for (fixed, probabilities, mass) in [
                (field.fixed_m, &mut field.m, &match_mass[f]),
                (field.fixed_u, &mut field.u, &other_mass[f]),
            ] {
                if fixed {
                    continue;
                }
                let total: f64 = mass.iter().sum::<f64>() + alpha * mass.len() as f64;
                let mut next: Vec<f64> = if total > 0.0 {
                    mass.iter().map(|c| (c + alpha) / total).collect()
                } else {
                    probabilities.clone()
                };
                floor_and_normalise(&mut next);
                for (old, new) in probabilities.iter_mut().zip(next) {
                    change = change.max((new - *old).abs());
                    *old = new;
                }
            }
        }
        last_change = change;
        converged = change <= settings.tolerance;
    }
    let log_likelihood = log_likelihood(&patterns, lambda, &fields);
    let mut model_fields = Vec::with_capacity(fields.len());
    for (comparison, state) in comparisons.fields.iter().zip(&fields) {
        let mut observed = vec![0u64; comparison.levels.len()];
        for (pattern, n) in histogram.iter() {
            if let Some(l) = pattern[model_fields.len()].index() {
                observed[l] += n;
            }
        }
        let levels = comparison
            .levels
            .iter()
            .enumerate()
            .map(|(l, level)| LevelModel {
                label: level.label.clone(),
                min_dice: level.min_dice,
                veto: level.veto,
                m: state.m[l],
                u: state.u[l],
                weight: 0.0,
                pairs: observed[l],
            })
            .collect();
        model_fields.push(FieldModel {
            field: comparison.field.clone(),
            levels,
            fixed_m: state.fixed_m,
            fixed_u: state.fixed_u,
        });
    }
    let mut model = FellegiSunterModel {
        lambda,
        fields: model_fields,
        fit: FitReport {
            pairs: histogram.pairs(),
            patterns: histogram.len() as u64,
            iterations,
            converged,
            last_change,
            log_likelihood,
            warnings: Vec::new(),
        },
    };
    model.set_monotone_weights();
    model.fit.warnings = warnings(&model, settings, last_change);
    Ok(model)
}

/// `Σ n · ln(λ Π m + (1 - λ) Π u)` over the patterns (missing fields left out).
fn log_likelihood(patterns: &[(&[Level], f64)], lambda: f64, fields: &[FieldState]) -> f64 {
    patterns
        .iter()
        .map(|&(pattern, n)| {
            let (mut log_m, mut log_u) = (lambda.ln(), (1.0 - lambda).ln());
            for (f, level) in pattern.iter().enumerate() {
                if let Some(l) = level.index() {
                    log_m += fields[f].m[l].ln();
                    log_u += fields[f].u[l].ln();
                }
            }
            let top = log_m.max(log_u);
            n * (top + ((log_m - top).exp() + (log_u - top).exp()).ln())
        })
        .sum()
}

fn warnings(model: &FellegiSunterModel, settings: &EmSettings, last_change: f64) -> Vec<String> {
    let mut out = Vec::new();
    let estimated_u = model.fields.iter().any(|f| !f.fixed_u);
    if model.fields.len() < 3 && estimated_u && model.fit.pairs > 0 {
        out.push(format!(
            "{} compared field(s): a two-class model of agreement patterns is identifiable only from 3 conditionally independent fields on; fix u (or m) in the config",
            model.fields.len()
        ));
    }
    let non_matches = model.fit.pairs as f64 * (1.0 - model.lambda);
    if estimated_u && model.fit.pairs > 0 && non_matches < 10.0 {
        out.push(format!(
            "about {non_matches:.1} of {} pairs are estimated non-matches: u rests mostly on the prior pseudo-counts; fix u in the config (e.g. from random pairs of own records)",
            model.fit.pairs
        ));
    }
    if model.fit.pairs > 0 {
        for field in &model.fields {
            let reached: Vec<bool> = field.levels.iter().map(|l| l.pairs > 0).collect();
            if reached.iter().all(|r| !r) {
                out.push(format!(
                    "field '{}': missing in every pair; its m and u are the prior's alone",
                    field.field
                ));
            } else if reached[0] && reached[1..].iter().all(|r| !r) {
                out.push(format!(
                    "field '{}': every compared pair agrees at its best level; its m and u below that level are the pseudo-counts' alone",
                    field.field
                ));
            } else {
                for level in field.levels.iter().filter(|l| l.pairs == 0) {
                    out.push(format!(
                        "field '{}': level '{}' was never observed; its m and u are the pseudo-counts' alone",
                        field.field, level.label
                    ));
                }
            }
        }
    }
    if !model.fit.converged && model.fit.pairs > 0 {
        out.push(format!(
            "em stopped after {} iterations without converging (largest change {last_change:e}, tolerance {:e})",
            model.fit.iterations, settings.tolerance
        ));
    }
    let swapped = model
        .fields
        .iter()
        .filter(|f| f.levels[0].weight < 0.0)
        .count();
    if swapped * 2 > model.fields.len() {
        out.push(format!(
            "the estimated match class agrees less than the non-match class on {swapped} of {} fields: the classes may be swapped; fix u in the config",
            model.fields.len()
        ));
    }
    out
}
