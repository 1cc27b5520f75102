//! Comparison levels: what a field's per-pair counts say about agreement, declared as data.

use serde::{Deserialize, Serialize};

use crate::MatchingError;

/// Most levels one field may declare (missing not counted).
pub const MAX_LEVELS: usize = 16;

/// One agreement level of a field, from the most agreeing down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonLevel {
    /// Its name in explanations and `model.json` (`exact`, `dice>=0.9`, `different`, ...).
    pub label: String,
    /// A pair's field is at this level when its Dice (upper bound, see [`FieldCounts`]) is at
    /// least this and it is not at a better level. The last level's bound is 0.
    pub min_dice: f64,
    /// A pair whose field is at this level is flagged whatever its match probability.
    #[serde(default)]
    pub veto: bool,
}

impl ComparisonLevel {
    /// A level without veto.
    #[must_use]
    pub fn new(label: &str, min_dice: f64) -> Self {
        Self {
            label: label.to_owned(),
            min_dice,
            veto: false,
        }
    }

    /// A level that flags the pair on its own.
    #[must_use]
    pub fn veto(label: &str, min_dice: f64) -> Self {
        Self {
            veto: true,
            ..Self::new(label, min_dice)
        }
    }
}

/// How a field's tokens are made, which decides its default comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The whole normalised value is one token (a sex code, an ID, a date kept whole).
    Exact,
    /// Characters tagged with their position (a fixed-format value such as a date).
    PositionalQGram,
    /// q-grams of a free-text value (names, addresses).
    QGram,
    /// Numeric neighbourhood tokens (values within a tolerance share tokens).
    Numeric,
}

/// The comparison of one field: its levels, best first. Missing (the field is absent on
/// either side) is always an extra, implicit level with weight 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldComparison {
    /// The field's name, as the schema calls it.
    pub field: String,
    /// Levels from the most agreeing to the least; the last one's `min_dice` is 0.
    pub levels: Vec<ComparisonLevel>,
}

impl FieldComparison {
    /// A comparison with these levels, checked.
    ///
    /// # Errors
    /// [`MatchingError::InvalidComparison`] when the name is empty, there are fewer than 2 or
    /// more than [`MAX_LEVELS`] levels, labels are empty or repeated, bounds are not strictly
    /// decreasing within [0, 1], the last bound is not 0, or a veto level is followed by a
    /// level without veto (a worse agreement must never escape a veto a better one gets).
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::fellegi_sunter::{ComparisonLevel, FieldComparison};
    /// let err = FieldComparison::new("dob", vec![
    ///     ComparisonLevel::new("exact", 1.0),
    ///     ComparisonLevel::new("close", 0.5),
    ///     ComparisonLevel::new("far", 0.7),
    /// ]).unwrap_err();
    /// assert_eq!(err.to_string(), "comparison of field 'dob': level 'far' has min_dice 0.7, \
    ///     expected below the previous level's 0.5");
    /// ```
    pub fn new(field: &str, levels: Vec<ComparisonLevel>) -> Result<Self, MatchingError> {
        let comparison = Self {
            field: field.to_owned(),
            levels,
        };
        comparison.check()?;
        Ok(comparison)
    }

    /// The default comparison of a field from its token kind, so that no field name is
    /// special:
    /// - [`TokenKind::Exact`]: `exact` (Dice 1) / `different` (veto): an exact token either
    ///   matches or names another value, and a different sex code or whole date is another
    ///   person.
    /// - [`TokenKind::PositionalQGram`]: `exact` / `typo` (Dice >= 0.85: one character of 8
    ///   to 13 differs) / `different` (veto): a fixed-format value that differs in more than a
    ///   typo is another value.
    /// - [`TokenKind::QGram`] and [`TokenKind::Numeric`]: `exact` / `dice>=0.9` / `dice>=0.7`
    ///   / `different`, no veto (Splink's default levels for fuzzy strings).
    #[must_use]
    pub fn for_token_kind(field: &str, kind: TokenKind) -> Self {
        let levels = match kind {
            TokenKind::Exact => vec![
                ComparisonLevel::new("exact", 1.0),
                ComparisonLevel::veto("different", 0.0),
            ],
            TokenKind::PositionalQGram => vec![
                ComparisonLevel::new("exact", 1.0),
                ComparisonLevel::new("typo", 0.85),
                ComparisonLevel::veto("different", 0.0),
            ],
            TokenKind::QGram | TokenKind::Numeric => vec![
                ComparisonLevel::new("exact", 1.0),
                ComparisonLevel::new("dice>=0.9", 0.9),
                ComparisonLevel::new("dice>=0.7", 0.7),
                ComparisonLevel::new("different", 0.0),
            ],
        };
        Self {
            field: field.to_owned(),
            levels,
        }
    }

    /// Checks the declaration (see [`FieldComparison::new`]).
    ///
    /// # Errors
    /// As [`FieldComparison::new`].
    pub fn check(&self) -> Result<(), MatchingError> {
        let fail = |reason: String| MatchingError::InvalidComparison {
            field: self.field.clone(),
            reason,
        };
        if self.field.is_empty() {
            return Err(fail("the field name is empty".into()));
        }
        if !(2..=MAX_LEVELS).contains(&self.levels.len()) {
            return Err(fail(format!(
                "{} levels, expected 2 to {MAX_LEVELS}",
                self.levels.len()
            )));
        }
        let mut previous: Option<&ComparisonLevel> = None;
        for (i, level) in self.levels.iter().enumerate() {
            if level.label.is_empty() {
                return Err(fail(format!("level {i} has an empty label")));
            }
            if self.levels[..i].iter().any(|l| l.label == level.label) {
                return Err(fail(format!("level '{}' is declared twice", level.label)));
            }
            if !(0.0..=1.0).contains(&level.min_dice) {
                return Err(fail(format!(
                    "level '{}' has min_dice {}, expected a number in [0, 1]",
                    level.label, level.min_dice
                )));
            }
            if let Some(previous) = previous {
                if level.min_dice >= previous.min_dice {
                    return Err(fail(format!(
                        "level '{}' has min_dice {}, expected below the previous level's {}",
                        level.label, level.min_dice, previous.min_dice
                    )));
                }
                if previous.veto && !level.veto {
                    return Err(fail(format!(
                        "level '{}' vetoes but the worse level '{}' does not",
                        previous.label, level.label
                    )));
                }
            }
            previous = Some(level);
        }
        let last = &self.levels[self.levels.len() - 1];
        if last.min_dice != 0.0 {
            return Err(fail(format!(
                "the last level '{}' has min_dice {}, expected 0 so that every pair has a level",
                last.label, last.min_dice
            )));
        }
        Ok(())
    }

    /// The level of one observed field.
    ///
    /// The level is chosen on the Dice *upper bound* ([`FieldCounts::dice_bounds`]): the peer's
    /// token count is only known up to its size bucket, and the bound is what the pair would
    /// score if the peer had the fewest tokens its bucket allows. A pair that agrees exactly
    /// still reaches `exact` (the bucket then holds the true size), and one that shares few
    /// tokens is low whatever the padding; the blur in between is part of what the levels
    /// mean, and EM estimates m and u of these observed levels, so it lowers how much a level
    /// tells but does not bias the probabilities.
    ///
    /// # Errors
    /// [`MatchingError::InvalidCounts`] for counts no pair can have (see
    /// [`FieldCounts::check`]).
    pub fn level_of(&self, observation: &FieldObservation) -> Result<Level, MatchingError> {
        let FieldObservation::Counts(counts) = observation else {
            return Ok(Level::MISSING);
        };
        counts.check(&self.field)?;
        let Some((_, upper)) = counts.dice_bounds() else {
            return Ok(Level::MISSING);
        };
        let index = self
            .levels
            .iter()
            .position(|l| upper >= l.min_dice)
            .unwrap_or(self.levels.len() - 1);
        Ok(Level::at(index))
    }
}

/// A field's level in one pair: an index into its levels (0 = best) or missing.
/// Serialised as its index, `255` for missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Level(u8);

impl Level {
    /// The field is missing on either side: no evidence either way (weight 0).
    pub const MISSING: Self = Self(u8::MAX);

    /// Level `index` (0 = the most agreeing). Indices at or above [`MAX_LEVELS`] are not
    /// levels any comparison has and are rejected wherever a pattern is used.
    #[must_use]
    pub fn at(index: usize) -> Self {
        Self(u8::try_from(index.min(usize::from(u8::MAX - 1))).unwrap_or(u8::MAX - 1))
    }

    /// The index, or `None` when missing.
    #[must_use]
    pub fn index(self) -> Option<usize> {
        (self != Self::MISSING).then_some(usize::from(self.0))
    }
}

/// What the comparing side learned of one field of one pair, in tokens (presence markers
/// excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldCounts {
    /// Tokens the two values share (as multisets).
    pub shared: u32,
    /// This side's token count.
    pub own: u32,
    /// The fewest tokens the peer's value can have (its size bucket's low end).
    pub peer_min: u32,
    /// The most tokens the peer's value can have (its size bucket's high end).
    pub peer_max: u32,
}

impl FieldCounts {
    /// Counts with the peer's size known exactly.
    #[must_use]
    pub fn exact(shared: u32, own: u32, peer: u32) -> Self {
        Self {
            shared,
            own,
            peer_min: peer,
            peer_max: peer,
        }
    }

    /// Checks that one pair can have these counts.
    ///
    /// # Errors
    /// [`MatchingError::InvalidCounts`] naming `field` when more tokens are shared than
    /// either side has, or `peer_min > peer_max`.
    pub fn check(&self, field: &str) -> Result<(), MatchingError> {
        let fail = |reason: String| MatchingError::InvalidCounts {
            field: field.to_owned(),
            reason,
        };
        if self.peer_min > self.peer_max {
            return Err(fail(format!(
                "peer size range {}..={} is empty",
                self.peer_min, self.peer_max
            )));
        }
        if self.shared > self.own || self.shared > self.peer_max {
            return Err(fail(format!(
                "{} shared tokens, more than this side's {} or the peer's at most {}",
                self.shared, self.own, self.peer_max
            )));
        }
        Ok(())
    }

    /// The range of Dice coefficients `2s / (x + y)` the counts allow over the peer's
    /// possible sizes `y` in `max(peer_min, s)..=peer_max`: `(lower, upper)`, or `None` when
    /// either side has no token (nothing to compare).
    #[must_use]
    pub fn dice_bounds(&self) -> Option<(f64, f64)> {
        if self.own == 0 || self.peer_max == 0 {
            return None;
        }
        let s = f64::from(self.shared);
        let x = f64::from(self.own);
        let fewest = f64::from(self.peer_min.max(self.shared).max(1));
        let most = f64::from(self.peer_max);
        Some((2.0 * s / (x + most), 2.0 * s / (x + fewest)))
    }
}

/// One field of one pair as the comparing side saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldObservation {
    /// Missing on this side, or the peer's presence marker was not shared.
    Missing,
    /// Present on both sides, with these counts.
    Counts(FieldCounts),
}

/// The comparisons of all compared fields, in the order of the pair's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparisons {
    /// One per field.
    pub fields: Vec<FieldComparison>,
}

impl Comparisons {
    /// Checked comparisons.
    ///
    /// # Errors
    /// [`MatchingError::InvalidComparison`] for an invalid field (see
    /// [`FieldComparison::new`]), a field named twice, or no field at all.
    pub fn new(fields: Vec<FieldComparison>) -> Result<Self, MatchingError> {
        if fields.is_empty() {
            return Err(MatchingError::InvalidComparison {
                field: String::new(),
                reason: "no field is compared".into(),
            });
        }
        for (i, field) in fields.iter().enumerate() {
            field.check()?;
            if fields[..i].iter().any(|f| f.field == field.field) {
                return Err(MatchingError::InvalidComparison {
                    field: field.field.clone(),
                    reason: "the field is compared twice".into(),
                });
            }
        }
        Ok(Self { fields })
    }

    /// A pair's agreement pattern: each field's level.
    ///
    /// # Errors
    /// [`MatchingError::InvalidCounts`] when the number of observations is not the number
    /// of fields or a field's counts are impossible.
    ///
    /// # Example
    /// ```
    /// use blindlink_matching::fellegi_sunter::*;
    /// let comparisons = Comparisons::new(vec![
    ///     FieldComparison::for_token_kind("name", TokenKind::QGram),
    ///     FieldComparison::for_token_kind("sex", TokenKind::Exact),
    /// ])?;
    /// let pattern = comparisons.pattern(&[
    ///     FieldObservation::Counts(FieldCounts::exact(9, 10, 10)), // Dice 0.9
    ///     FieldObservation::Missing,
    /// ])?;
    /// assert_eq!(pattern, [Level::at(1), Level::MISSING]);
    /// # Ok::<(), blindlink_matching::MatchingError>(())
    /// ```
    pub fn pattern(&self, observations: &[FieldObservation]) -> Result<Vec<Level>, MatchingError> {
        if observations.len() != self.fields.len() {
            return Err(MatchingError::InvalidCounts {
                field: self.fields[0].field.clone(),
                reason: format!(
                    "a pair has {} field observations, expected one per compared field ({})",
                    observations.len(),
                    self.fields.len()
                ),
            });
        }
        self.fields
            .iter()
            .zip(observations)
            .map(|(field, observation)| field.level_of(observation))
            .collect()
    }

    /// Checks that `pattern` names a level (or missing) of every field.
    pub(crate) fn check_pattern(&self, pattern: &[Level]) -> Result<(), MatchingError> {
        check_pattern(
            self.fields
                .iter()
                .map(|f| (f.field.as_str(), f.levels.len())),
            pattern,
        )
    }
}

/// Checks that `pattern` names a level (or missing) of each of `fields` (name, number of levels):
/// the one check behind [`Comparisons`] and the fitted model.
pub(crate) fn check_pattern<'a>(
    fields: impl ExactSizeIterator<Item = (&'a str, usize)>,
    pattern: &[Level],
) -> Result<(), MatchingError> {
    if pattern.len() != fields.len() {
        return Err(MatchingError::FellegiSunter {
            reason: format!(
                "a pattern of {} levels, expected one per compared field ({})",
                pattern.len(),
                fields.len()
            ),
        });
    }
    for ((field, levels), level) in fields.zip(pattern) {
        if let Some(i) = level.index()
            && i >= levels
        {
            return Err(MatchingError::FellegiSunter {
                reason: format!("field '{field}' has {levels} levels, a pattern names level {i}"),
            });
        }
    }
    Ok(())
}
