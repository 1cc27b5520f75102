//! Fellegi–Sunter scoring of compared pairs, with m, u and the prior estimated by EM over the
//! histogram of agreement patterns (as Splink and fastLink do, here on private comparisons:
//! the comparing side knows of each pair and field only the shared-token count, its own token
//! count and the peer's size bucket).
//!
//! 1. [`FieldComparison`]: each field's levels, best first, declared as data (a label, a
//!    lower Dice bound, an optional veto), or derived from the field's [`TokenKind`] so that
//!    no field name is special. Missing is an implicit extra level with weight 0.
//! 2. [`Comparisons::pattern`] maps a pair's per-field [`FieldObservation`]s to its
//!    agreement pattern (one [`Level`] per field) on the Dice upper bound over the peer's
//!    bucket ([`FieldComparison::level_of`] says why).
//! 3. [`PatternHistogram`] counts pairs per distinct pattern; [`estimate`] runs EM on it
//!    (assumptions, priors, clamping, stopping rule and what is reported: see there) and
//!    returns a [`FellegiSunterModel`], the serialisable m/u table (`model.json`).
//! 4. [`FellegiSunterModel::score`] gives a pair's match weight (`log2(λ/(1-λ))` plus each
//!    field's `log2(m/u)`), probability and veto; [`PairScore::flagged`] applies the rule
//!    (probability below the threshold, default [`DEFAULT_PROBABILITY_THRESHOLD`], or a veto);
//!    [`FellegiSunterModel::explain`] gives the waterfall in numbers and [`waterfall_svg`]
//!    draws it.
//!
//! # Example
//! ```
//! use blindlink_matching::fellegi_sunter::*;
//! let comparisons = Comparisons::new(vec![
//!     FieldComparison::for_token_kind("kana", TokenKind::QGram),
//!     FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
//!     FieldComparison::for_token_kind("sex", TokenKind::Exact),
//! ])?;
//! let same = [
//!     FieldObservation::Counts(FieldCounts::exact(5, 5, 5)),
//!     FieldObservation::Counts(FieldCounts::exact(8, 8, 8)),
//!     FieldObservation::Counts(FieldCounts::exact(1, 1, 1)),
//! ];
//! let other_dob = [
//!     FieldObservation::Counts(FieldCounts::exact(5, 5, 5)),
//!     FieldObservation::Counts(FieldCounts::exact(3, 8, 8)),
//!     FieldObservation::Counts(FieldCounts::exact(1, 1, 1)),
//! ];
//! let mut histogram = PatternHistogram::new();
//! histogram.add_count(&comparisons.pattern(&same)?, 990);
//! histogram.add_count(&comparisons.pattern(&other_dob)?, 10);
//! let model = estimate(&comparisons, &histogram, &EmSettings::default())?;
//! let score = model.score(&comparisons.pattern(&other_dob)?)?;
//! assert!(score.flagged(DEFAULT_PROBABILITY_THRESHOLD)); // the date of birth vetoes
//! assert_eq!(score.veto, Some(1));
//! # Ok::<(), blindlink_matching::MatchingError>(())
//! ```

mod comparison;
mod em;
mod model;
mod waterfall;

#[cfg(test)]
mod tests;

pub use comparison::{
    ComparisonLevel, Comparisons, FieldComparison, FieldCounts, FieldObservation, Level,
    MAX_LEVELS, TokenKind,
};
pub use em::{EmSettings, FixedProbabilities, PROBABILITY_FLOOR, PatternHistogram, estimate};
pub use model::{
    DEFAULT_PROBABILITY_THRESHOLD, FellegiSunterModel, FieldContribution, FieldModel, FitReport,
    LevelModel, PairExplanation, PairScore,
};
pub use waterfall::waterfall_svg;
