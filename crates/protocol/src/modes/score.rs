//! Fuzzy's pair score: per-field Dice coefficients of a pair's quasi-identifiers combined into
//! one weighted score, with veto rules for fields that identify a person on their own terms (a
//! different date of birth or sex is a different person, however alike the names). `validate`
//! no longer uses it: it scores with Fellegi–Sunter (`validate.rs`).

use blindlink_matching::dice_from_counts;

use crate::ProtocolError;

/// How one per-field filter counts in the agreement score.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldScoring {
    /// The field's name (as in the schema); both sides must list the same fields.
    pub name: String,
    /// Its weight in the weighted mean (fields missing on either side are left out).
    pub weight: f64,
    /// Flag the pair whenever this field's Dice coefficient is below this value, whatever the
    /// weighted score.
    pub veto_below: Option<f64>,
}

impl FieldScoring {
    /// A field with a weight and no veto.
    #[must_use]
    pub fn weighted(name: &str, weight: f64) -> Self {
        Self {
            name: name.to_owned(),
            weight,
            veto_below: None,
        }
    }

    /// `name:weight[:veto]`, for the handshake parameters.
    pub(crate) fn describe(&self) -> String {
        match self.veto_below {
            Some(veto) => format!("{}:{}:{}", self.name, self.weight, veto),
            None => format!("{}:{}", self.name, self.weight),
        }
    }

    pub(crate) fn check(&self) -> Result<(), ProtocolError> {
        if self.name.is_empty() || self.name.contains([':', ';', ',']) {
            return Err(ProtocolError::Local {
                what: "validate field",
                reason: format!("name '{}' is empty or contains ':', ';' or ','", self.name),
            });
        }
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(ProtocolError::Local {
                what: "validate field",
                reason: format!(
                    "field '{}' has weight {}, expected >= 0",
                    self.name, self.weight
                ),
            });
        }
        if let Some(veto) = self.veto_below
            && !(0.0..=1.0).contains(&veto)
        {
            return Err(ProtocolError::Local {
                what: "validate field",
                reason: format!("field '{}' has veto {veto}, outside [0, 1]", self.name),
            });
        }
        Ok(())
    }
}

/// The agreement of one linked pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldAgreement {
    /// The weighted mean of the per-field Dice coefficients over the fields present on both
    /// sides (0 when none is).
    pub score: f64,
    /// Below the threshold, or a veto field disagreed.
    pub flagged: bool,
}

/// Scores pairs of per-field filter sets.
#[derive(Debug, Clone)]
pub struct ValidateScorer {
    fields: Vec<FieldScoring>,
    threshold: f64,
}

impl ValidateScorer {
    /// A scorer with these fields and threshold.
    #[must_use]
    pub fn new(fields: Vec<FieldScoring>, threshold: f64) -> Self {
        Self { fields, threshold }
    }

    /// Scores one pair: `ours[f]` and `theirs[f]` are field `f`'s filters (all-zero: missing).
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{FieldScoring, ValidateScorer};
    /// let w = FieldScoring::weighted;
    /// let mut fields = vec![w("kana", 2.0), w("kanji", 1.0), w("dob", 2.0), w("sex", 1.0), w("address", 1.0)];
    /// fields[2].veto_below = Some(0.9); // another date of birth is another person
    /// let scorer = ValidateScorer::new(fields, 0.75);
    /// let f = |b: u8| vec![b; 8];
    /// let same = scorer.score(&[f(1), f(2), f(4), f(8), f(16)], &[f(1), f(2), f(4), f(8), f(16)]);
    /// assert!(!same.flagged && same.score == 1.0);
    /// let other_dob = scorer.score(&[f(1), f(2), f(4), f(8), f(16)], &[f(1), f(2), f(5), f(8), f(16)]);
    /// assert!(other_dob.flagged); // date of birth Dice 2/3 is below its veto of 0.9
    /// ```
    #[must_use]
    pub fn score<A: AsRef<[u8]>, B: AsRef<[u8]>>(
        &self,
        ours: &[A],
        theirs: &[B],
    ) -> FieldAgreement {
        let dice: Vec<Option<f64>> = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| {
                let (a, b) = (a.as_ref(), b.as_ref());
                let pa: u32 = a.iter().map(|x| x.count_ones()).sum();
                let pb: u32 = b.iter().map(|x| x.count_ones()).sum();
                if pa == 0 || pb == 0 {
                    return None;
                }
                let common: u32 = a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum();
                Some(dice_from_counts(common, pa, pb))
            })
            .collect();
        self.score_dice(&dice)
    }

    /// Scores one pair from its per-field Dice coefficients, in the order of the fields;
    /// `None` for a field missing on either side (left out of the weighted mean and of the
    /// vetoes).
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{FieldScoring, ValidateScorer};
    /// let w = FieldScoring::weighted;
    /// let mut fields = vec![w("kana", 2.0), w("kanji", 1.0), w("dob", 2.0), w("sex", 1.0), w("address", 1.0)];
    /// fields[2].veto_below = Some(0.9); // another date of birth is another person
    /// let scorer = ValidateScorer::new(fields, 0.75);
    /// let same = scorer.score_dice(&[Some(1.0), None, Some(1.0), Some(1.0), Some(0.9)]);
    /// assert!(!same.flagged && (same.score - (2.0 + 2.0 + 1.0 + 0.9) / 6.0).abs() < 1e-12);
    /// assert!(scorer.score_dice(&[Some(1.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0)]).flagged);
    /// ```
    #[must_use]
    pub fn score_dice(&self, dice: &[Option<f64>]) -> FieldAgreement {
        let mut weighted = 0.0;
        let mut total_weight = 0.0;
        let mut vetoed = false;
        for (field, dice) in self.fields.iter().zip(dice) {
            let Some(dice) = *dice else {
                continue;
            };
            weighted += field.weight * dice;
            total_weight += field.weight;
            if field.veto_below.is_some_and(|veto| dice < veto) {
                vetoed = true;
            }
        }
        let score = if total_weight > 0.0 {
            weighted / total_weight
        } else {
            0.0
        };
        FieldAgreement {
            score,
            flagged: vetoed || score < self.threshold,
        }
    }
}
