//! What to generate: scenario, locale, size, seed and the rates of every kind of error, with the
//! defaults the CLI documents.

use crate::SynthError;

/// Which two files are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A clean, authoritative registry and an insurer's hand-entered file carrying the registry's
    /// identifier, with planted wrong-person links, keying errors and unregistered persons.
    RegistryInsurer,
    /// Two hospitals with overlapping patients and no shared identifier (fuzzy linkage).
    TwoHospitals,
}

/// Names, addresses and notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// Japanese: kanji and kana names, prefecture–city–town addresses, My Numbers.
    Japanese,
    /// Latin (FEBRL-style): given name, surname, street address, suburb, postcode, state.
    Latin,
}

/// Probabilities, per record written by hand, of a field being written differently from the
/// registry's canonical form (the person is the same; only the notation differs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorruptionRates {
    /// A kanji written in a variant form (髙/高, 﨑/崎, 邊/辺 …); ja only.
    pub kanji_variant: f64,
    /// ja: the kana name in hiragana, half-width, with a long-vowel mark, one kana mistyped, or
    /// surname and given name joined in one field (with an ASCII, a full-width or no space);
    /// en: a one-letter typo in the given name or surname.
    pub kana_variant: f64,
    /// The date of birth in another notation (slashes, compact digits, full-width digits,
    /// Japanese era for ja; day-first or month names for en).
    pub date_format: f64,
    /// The sex in another code (男/女 or 1/2 for ja; male/female, m/f or 1/2 for en).
    pub sex_format: f64,
    /// The address in another notation (hyphens, full-width digits, kanji 丁目, missing
    /// prefecture, postcode without hyphen for ja; abbreviated street type, missing postcode or
    /// state for en).
    pub address_format: f64,
}

impl Default for CorruptionRates {
    fn default() -> Self {
        Self {
            kanji_variant: 0.03,
            kana_variant: 0.05,
            date_format: 0.05,
            sex_format: 0.03,
            address_format: 0.05,
        }
    }
}

/// Probabilities, per insurer record, of its identifier being wrong (registry–insurer only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkErrorRates {
    /// The identifier of another resident with the same kana name and sex.
    pub wrong_same_name: f64,
    /// The identifier of another member of the same household.
    pub wrong_family: f64,
    /// The identifier of an unrelated resident.
    pub wrong_unrelated: f64,
    /// The person's own identifier with a typing error that the check digit catches.
    pub keying_error: f64,
    /// The insured person is missing from the registry.
    pub unregistered: f64,
}

impl Default for LinkErrorRates {
    fn default() -> Self {
        Self {
            wrong_same_name: 0.004,
            wrong_family: 0.004,
            wrong_unrelated: 0.002,
            keying_error: 0.005,
            unregistered: 0.01,
        }
    }
}

/// Everything that determines a generated data set: the same configuration gives the same
/// bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Which files.
    pub scenario: Scenario,
    /// Which names and addresses.
    pub locale: Locale,
    /// Size of the population (registry–insurer: the registry holds nearly all of them).
    pub persons: u64,
    /// registry–insurer: the share of persons who are insured; two-hospitals: the share of
    /// persons in both hospitals (the others are split evenly between the two).
    pub overlap: f64,
    /// The seed of every random choice.
    pub seed: u64,
    /// Notation errors.
    pub corruption: CorruptionRates,
    /// Identifier errors.
    pub link_errors: LinkErrorRates,
}

/// Record ids are 10-digit numbers (a keyed permutation of the person index).
pub(crate) const RECORD_ID_DOMAIN: u64 = 10_000_000_000;
/// The en national identifier has 8 digits before its check digit.
pub(crate) const LATIN_ID_DOMAIN: u64 = 100_000_000;

impl SynthConfig {
    /// A configuration with the default rates.
    pub fn new(scenario: Scenario, locale: Locale, persons: u64, overlap: f64, seed: u64) -> Self {
        Self {
            scenario,
            locale,
            persons,
            overlap,
            seed,
            corruption: CorruptionRates::default(),
            link_errors: LinkErrorRates::default(),
        }
    }

    /// Checks sizes and rates.
    ///
    /// # Errors
    /// [`SynthError::Rate`] for a rate outside 0..=1, [`SynthError::RatesExceedOne`] when the
    /// identifier-error rates add up to more than 1, [`SynthError::Persons`] for a population
    /// that is empty or too large to number.
    pub fn validate(&self) -> Result<(), SynthError> {
        let c = &self.corruption;
        let l = &self.link_errors;
        let rates = [
            ("overlap", self.overlap),
            ("kanji-variant", c.kanji_variant),
            ("kana-variant", c.kana_variant),
            ("date-format", c.date_format),
            ("sex-format", c.sex_format),
            ("address-format", c.address_format),
            ("wrong-same-name", l.wrong_same_name),
            ("wrong-family", l.wrong_family),
            ("wrong-unrelated", l.wrong_unrelated),
            ("keying-error", l.keying_error),
            ("unregistered", l.unregistered),
        ];
        for (name, value) in rates {
            if !(0.0..=1.0).contains(&value) {
                return Err(SynthError::Rate { name, value });
            }
        }
        let total = l.wrong_same_name + l.wrong_family + l.wrong_unrelated + l.keying_error;
        if total > 1.0 {
            return Err(SynthError::RatesExceedOne { total });
        }
        let max = match self.locale {
            Locale::Japanese => RECORD_ID_DOMAIN,
            Locale::Latin => LATIN_ID_DOMAIN,
        };
        if self.persons == 0 || self.persons > max {
            return Err(SynthError::Persons {
                persons: self.persons,
                max,
            });
        }
        Ok(())
    }
}
