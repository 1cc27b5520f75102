//! The key holder's dictionary attack: whoever holds the linkage secret and the schema (the
//! other party of every two-party protocol) encodes candidate values itself and looks the
//! victim's filters up. This is the sanity bound of the attack literature (Vidanage et al.'s
//! "dictionary attack under key compromise", Christen et al. 2017 §2) and, for blindlink,
//! the main threat: both parties hold the key, so any keyed encoding that reaches the peer is
//! decoded.
//!
//! Every hardening `blindlink-encoding` offers is XOR-linear or affine over GF(2) (xor-fold,
//! rule 90, permutation, balance = permute `(x ‖ x)` XOR a constant), so a keyed step is
//! simply re-applied to the candidates. BLIP's flips are XORed onto the filter before the later
//! steps, hence `victim ⊕ E(∅, i) ⊕ E₀(∅) = E₀(x)` where `E` encodes with the victim's flips of
//! record `i` and `E₀` without flips: a key holder who can regenerate the flips (BLIP keyed by
//! the linkage secret and the row index, as before the fix of issue 14) strips them exactly.
//! With fresh flips (a per-run seed the peer never sees) the strip fails and only a
//! nearest-neighbour decode remains.

use std::collections::HashMap;

use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret};
use blindlink_synth::Locale;

use crate::encode::{EncodingConfig, FilterLayout, Hardening, normalised_values};
use crate::metrics::{Guess, dice};
use crate::{LeakageError, Table};

/// One field's decode: a guess per victim record (indices into the dictionary) and the
/// dictionary of normalised values.
pub type FieldDecode = (Vec<Guess>, Vec<String>);

/// What the key holder knows of BLIP's flips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlipKnowledge {
    /// The flips' seed: BLIP keyed by something the key holder has (the linkage secret, as
    /// before issue 14's fix), modelled by handing the attacker the victim's seed.
    Seed([u8; 32]),
    /// Nothing: fresh per-run flips.
    None,
}

/// The key holder: the schema and the linkage secret, and whatever it knows of BLIP.
#[derive(Debug)]
pub struct KeyHolder {
    config: EncodingConfig,
    locale: Locale,
    /// Encodes with the victim's flips where known.
    noisy: ClkEncoder,
    /// Encodes without flips.
    clean: ClkEncoder,
}

/// A BLIP step with this ε flips with probability `1 / (1 + e^ε)` = 0 in f64.
const NO_FLIPS_EPSILON: f64 = 1000.0;

impl KeyHolder {
    /// The attacker of `config` for `locale` holding `secret`.
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] when the schema is refused.
    pub fn new(
        config: &EncodingConfig,
        locale: Locale,
        secret: &LinkageSecret,
        blip: BlipKnowledge,
    ) -> Result<Self, LeakageError> {
        let mut noisy = config.encoder(locale, secret)?;
        if let BlipKnowledge::Seed(seed) = blip {
            noisy = noisy.with_blip_seed(seed);
        }
        // The same steps in the same places (so every keyed step keeps its key), BLIP
        // turned off.
        let clean_config = match config.hardening {
            Hardening::Blip(_) => config.clone().hardened(Hardening::Blip(NO_FLIPS_EPSILON)),
            _ => config.clone(),
        };
        Ok(Self {
            config: config.clone(),
            locale,
            noisy,
            clean: clean_config.encoder(locale, secret)?,
        })
    }

    fn encode(
        &self,
        encoder: &ClkEncoder,
        values: &[&str],
        index: u64,
        scratch: &mut EncoderScratch,
    ) -> Result<Vec<u8>, LeakageError> {
        let mut out = vec![0u8; encoder.bytes_per_clk()];
        encoder.encode(values, index, scratch, &mut out)?;
        Ok(out)
    }

    fn empty_values(&self) -> Vec<&'static str> {
        let n =
            self.config.fields.len() + usize::from(self.config.hardening == Hardening::SaltYear);
        vec![""; n]
    }

    /// `victim ⊕ E(∅, i) ⊕ E₀(∅)` for each victim filter: the filter without its BLIP flips
    /// when the attacker regenerates them, the victim's filter unchanged without BLIP.
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] (a bug: empty records always encode).
    pub fn strip(&self, victim: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, LeakageError> {
        if !matches!(self.config.hardening, Hardening::Blip(_)) {
            return Ok(victim.to_vec());
        }
        let mut scratch = EncoderScratch::default();
        let empty = self.empty_values();
        let clean_empty = self.encode(&self.clean, &empty, 0, &mut scratch)?;
        victim
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let flips = self.encode(&self.noisy, &empty, i as u64, &mut scratch)?;
                Ok(v.iter()
                    .zip(&flips)
                    .zip(&clean_empty)
                    .map(|((a, b), c)| a ^ b ^ c)
                    .collect())
            })
            .collect()
    }

    /// Record-level decode: encodes every record of the attacker's plaintext `reference` and
    /// names, for each victim filter, the reference records at the highest Dice similarity to
    /// its stripped filter (confidence = that similarity; 1 means an exact match).
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] when a reference value is refused.
    pub fn decode_records(
        &self,
        victim: &[Vec<u8>],
        reference: &Table,
    ) -> Result<Vec<Guess>, LeakageError> {
        let dictionary = self.config.encode(self.locale, reference, &self.clean)?;
        let stripped = self.strip(victim)?;
        Ok(stripped.iter().map(|y| nearest(y, &dictionary)).collect())
    }

    /// Field-level decode of a `per-field` encoding: for each configured field, the values of
    /// `dictionary(field)` whose encoding alone equals (or, failing that, is nearest to) the
    /// victim's part for that field. Returns, per field, the guesses (indices into that
    /// field's dictionary) and the dictionary of normalised values.
    ///
    /// With a year-of-birth salt ([`Hardening::SaltYear`]) every value is also tried with
    /// every year of `salt_years` (a date with its own year), so the salt costs the key holder
    /// a factor of the number of years, not the decode.
    ///
    /// With a `clk` layout the fields share bits and this decode does not apply: an empty
    /// list is returned.
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] when a dictionary value is refused.
    pub fn decode_fields(
        &self,
        victim: &[Vec<u8>],
        dictionary: impl Fn(usize) -> Vec<String>,
        salt_years: &[String],
    ) -> Result<Vec<FieldDecode>, LeakageError> {
        if self.config.layout != FilterLayout::PerField {
            return Ok(Vec::new());
        }
        let mut scratch = EncoderScratch::default();
        let empty = self.empty_values();
        let base = self.encode(&self.clean, &empty, 0, &mut scratch)?;
        let shifted: Vec<Vec<u8>> = self.strip(victim)?.iter().map(|y| xor(y, &base)).collect();
        let mut out = Vec::new();
        let salted = self.config.hardening == Hardening::SaltYear;
        let salt_slot = self.config.fields.len();
        for (slot, &field) in self.config.fields.iter().enumerate() {
            let values = dictionary(field);
            let is_date = field_is_date(self.locale, field);
            // With a year-of-birth salt the key holder also tries the salt: a date carries
            // its own year, any other value every year of `salt_years`.
            let salts: Vec<String> = if !salted {
                vec![String::new()]
            } else {
                salt_years.to_vec()
            };
            // (contribution, value index) for every (value, salt) tried.
            let mut contributions = Vec::with_capacity(values.len());
            let mut owners = Vec::with_capacity(values.len());
            let mut support = vec![0u8; base.len()];
            for (index, v) in values.iter().enumerate() {
                let own_year = [v.chars().take(4).collect::<String>()];
                let tried: &[String] = if salted && is_date { &own_year } else { &salts };
                for salt in tried {
                    let mut record = empty.clone();
                    record[slot] = v;
                    if salted {
                        record[salt_slot] = salt;
                    }
                    let c = xor(&self.encode(&self.clean, &record, 0, &mut scratch)?, &base);
                    for (s, b) in support.iter_mut().zip(&c) {
                        *s |= b;
                    }
                    contributions.push(c);
                    owners.push(index);
                }
            }
            let mut exact: HashMap<&[u8], Vec<usize>> = HashMap::new();
            for (c, &owner) in contributions.iter().zip(&owners) {
                let e = exact.entry(c.as_slice()).or_default();
                if !e.contains(&owner) {
                    e.push(owner);
                }
            }
            let guesses = shifted
                .iter()
                .map(|y| {
                    let part: Vec<u8> = y.iter().zip(&support).map(|(a, m)| a & m).collect();
                    match exact.get(part.as_slice()) {
                        Some(c) => Guess {
                            candidates: c.clone(),
                            confidence: 1.0,
                        },
                        None => {
                            let mut g = nearest(&part, &contributions);
                            g.candidates = g.candidates.iter().map(|&i| owners[i]).collect();
                            g.candidates.dedup();
                            g
                        }
                    }
                })
                .collect();
            out.push((guesses, values));
        }
        Ok(out)
    }
}

/// The dictionary a key holder uses for a field: the distinct normalised values of its own
/// plaintext, and for the date of birth every day from 1900 to 2025 and for the sex every
/// ISO/IEC 5218 code (domains small enough to enumerate).
#[must_use]
pub fn field_dictionary(locale: Locale, reference: &Table, field: usize, q: usize) -> Vec<String> {
    let mut values: Vec<String> = normalised_values(locale, reference, field, q)
        .into_iter()
        .flatten()
        .filter(|v| !v.is_empty())
        .collect();
    match reference.columns.get(field).copied() {
        Some("date_of_birth") => {
            for year in 1900..=2025 {
                for month in 1..=12u32 {
                    for day in 1..=days_in_month(year, month) {
                        values.push(format!("{year:04}-{month:02}-{day:02}"));
                    }
                }
            }
        }
        Some("sex") => values.extend(["0", "1", "2", "9"].map(String::from)),
        _ => {}
    }
    values.sort_unstable();
    values.dedup();
    values
}

fn field_is_date(locale: Locale, field: usize) -> bool {
    crate::quasi_identifiers(locale).get(field) == Some(&"date_of_birth")
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether dictionary value `candidate` is victim record `target`'s normalised value.
#[must_use]
pub fn value_is_right(
    truth: &[Option<String>],
    dictionary: &[String],
    target: usize,
    candidate: usize,
) -> bool {
    truth[target].as_deref() == Some(dictionary[candidate].as_str())
}

/// The normalised values of a victim field (the truth of [`KeyHolder::decode_fields`]).
#[must_use]
pub fn field_truth(locale: Locale, victim: &Table, field: usize, q: usize) -> Vec<Option<String>> {
    normalised_values(locale, victim, field, q)
}

/// The reference records at the highest Dice similarity (ties all named).
fn nearest(y: &[u8], dictionary: &[Vec<u8>]) -> Guess {
    let mut best = -1.0;
    let mut candidates = Vec::new();
    for (i, d) in dictionary.iter().enumerate() {
        let s = dice(y, d);
        if s > best {
            best = s;
            candidates.clear();
        }
        if s == best {
            candidates.push(i);
        }
    }
    if best <= 0.0 {
        return Guess::default();
    }
    Guess {
        candidates,
        confidence: best,
    }
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}
