//! A population drawn from real name frequency tables: the setting of the frequency and
//! pattern-mining attacks at the published scale (NCVR, 222,251 records), rebuilt from the
//! tables FEBRL's generator samples from (`data/febrl-*-freq.csv`, Australian names; source
//! and licence in `data/README.md`).
//!
//! Every person's given name and surname are drawn independently, each in proportion to its
//! count. The victim's and the attacker's records are two independent samples of the same
//! population (different persons, as the attacker's plaintext in the papers is another NCVR
//! snapshot, not the victim's records), so there are no true pairs: the attacks are scored per
//! value.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};

use crate::{LeakageError, LinkedFiles, Table, quasi_identifiers};
use blindlink_synth::Locale;

/// Persons per side above which a sample is refused (memory: a record is five strings).
pub const MAX_SAMPLE_PERSONS: usize = 1_000_000;

/// A name frequency table: the distinct names and their cumulative counts, ready to draw from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFrequencies {
    names: Vec<String>,
    /// `cumulative[i]` is the sum of the counts of names `0..=i`.
    cumulative: Vec<u64>,
}

impl NameFrequencies {
    /// Reads a table of lines `name,count` (no header; FEBRL's `*-freq.csv` format). A name on
    /// several lines gets the sum of their counts; blank lines are skipped. `table` names the
    /// table in errors.
    ///
    /// # Errors
    /// [`LeakageError::FrequencyTable`] for a line without two fields, an empty name, a count
    /// that is not a positive integer, or a table without any name.
    ///
    /// # Example
    /// ```
    /// use blindlink_leakage::NameFrequencies;
    /// let t = NameFrequencies::parse("given names", "anna,3\njack,1\nanna,2\n")?;
    /// assert_eq!(t.len(), 2);
    /// assert_eq!(t.count("anna"), Some(5));
    /// assert_eq!(t.total(), 6);
    /// # Ok::<(), blindlink_leakage::LeakageError>(())
    /// ```
    pub fn parse(table: &str, csv: &str) -> Result<Self, LeakageError> {
        let bad = |line: usize, reason: String| LeakageError::FrequencyTable {
            table: table.to_owned(),
            line,
            reason,
        };
        let mut counts: Vec<(String, u64)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (i, line) in csv.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let [name, count] = fields[..] else {
                return Err(bad(
                    line_no,
                    format!("expected 2 fields (name,count), found {}", fields.len()),
                ));
            };
            if name.is_empty() {
                return Err(bad(line_no, "the name is empty".into()));
            }
            let count: u64 = match count.parse() {
                Ok(c) if c > 0 && c <= u64::from(u32::MAX) => c,
                _ => {
                    return Err(bad(
                        line_no,
                        format!("count '{count}' is not a positive integer below 2^32"),
                    ));
                }
            };
            match index.get(name) {
                Some(&at) => {
                    let entry: &mut (String, u64) = &mut counts[at];
                    entry.1 += count;
                }
                None => {
                    index.insert(name.to_owned(), counts.len());
                    counts.push((name.to_owned(), count));
                }
            }
        }
        if counts.is_empty() {
            return Err(bad(1, "the table has no name".into()));
        }
        let mut total = 0u64;
        let (names, cumulative) = counts
            .into_iter()
            .map(|(name, count)| {
                total += count;
                (name, total)
            })
            .unzip();
        Ok(Self { names, cumulative })
    }

    /// FEBRL's given-name table (`data/febrl-givenname-freq.csv`).
    ///
    /// # Errors
    /// None in practice (the table is compiled in and tested).
    pub fn febrl_given_names() -> Result<Self, LeakageError> {
        Self::parse(
            "febrl-givenname-freq.csv",
            include_str!("../data/febrl-givenname-freq.csv"),
        )
    }

    /// FEBRL's surname table (`data/febrl-surname-freq.csv`).
    ///
    /// # Errors
    /// None in practice (the table is compiled in and tested).
    pub fn febrl_surnames() -> Result<Self, LeakageError> {
        Self::parse(
            "febrl-surname-freq.csv",
            include_str!("../data/febrl-surname-freq.csv"),
        )
    }

    /// Number of distinct names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table has no name (never true of a parsed table).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Sum of the counts.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The count of `name`, if it is in the table.
    #[must_use]
    pub fn count(&self, name: &str) -> Option<u64> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(self.cumulative[i] - i.checked_sub(1).map_or(0, |p| self.cumulative[p]))
    }

    /// Draws one name, each with probability count / total.
    pub fn draw(&self, rng: &mut ChaCha20Rng) -> &str {
        // A uniform number below the total by multiply-shift: the bias is below total / 2^64.
        let unit = (u128::from(rng.next_u64()) * u128::from(self.total())) >> 64;
        let at = self.cumulative.partition_point(|&c| u128::from(c) <= unit);
        &self.names[at.min(self.names.len() - 1)]
    }
}

impl LinkedFiles {
    /// Draws `victims` victim persons and `attackers` attacker persons (en columns,
    /// [`quasi_identifiers`]; date of birth, sex and address empty), each person's given name
    /// from `given` and surname from `surnames` independently, by their counts, from `seed`.
    /// The two sides are disjoint samples of the same population: no true pairs.
    ///
    /// # Errors
    /// [`LeakageError::Sample`] for a side of more than [`MAX_SAMPLE_PERSONS`] persons.
    ///
    /// # Example
    /// ```
    /// use blindlink_leakage::{LinkedFiles, NameFrequencies};
    /// let given = NameFrequencies::parse("given", "anna,9\njack,1\n")?;
    /// let surnames = NameFrequencies::parse("surnames", "white,1\n")?;
    /// let files = LinkedFiles::sample_names(&given, &surnames, 100, 50, 7)?;
    /// assert_eq!((files.victim.len(), files.reference.len()), (100, 50));
    /// assert_eq!(files.victim.rows[0][1], "white");
    /// assert!(files.true_pairs().is_empty());
    /// # Ok::<(), blindlink_leakage::LeakageError>(())
    /// ```
    pub fn sample_names(
        given: &NameFrequencies,
        surnames: &NameFrequencies,
        victims: usize,
        attackers: usize,
        seed: u64,
    ) -> Result<Self, LeakageError> {
        for (side, n) in [("victim", victims), ("attacker", attackers)] {
            if n > MAX_SAMPLE_PERSONS {
                return Err(LeakageError::Sample(format!(
                    "{n} {side} persons, more than {MAX_SAMPLE_PERSONS}"
                )));
            }
        }
        let columns = quasi_identifiers(Locale::Latin);
        // One stream per side, so the victim's sample does not depend on the attacker's size.
        let side = |stream: u64, n: usize| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            let rows = (0..n)
                .map(|_| {
                    let mut row = vec![String::new(); columns.len()];
                    row[0] = given.draw(&mut rng).to_owned();
                    row[1] = surnames.draw(&mut rng).to_owned();
                    row
                })
                .collect();
            Table {
                columns: columns.to_vec(),
                rows,
                person: vec![None; n],
            }
        };
        Ok(Self {
            locale: Locale::Latin,
            victim: side(1, victims),
            reference: side(2, attackers),
        })
    }

    /// [`Self::sample_names`] from FEBRL's frequency tables, `persons` on each side.
    ///
    /// # Errors
    /// [`LeakageError::Sample`] for more than [`MAX_SAMPLE_PERSONS`] persons.
    pub fn febrl_population(persons: usize, seed: u64) -> Result<Self, LeakageError> {
        Self::sample_names(
            &NameFrequencies::febrl_given_names()?,
            &NameFrequencies::febrl_surnames()?,
            persons,
            persons,
            seed,
        )
    }
}
