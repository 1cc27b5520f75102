//! The match-key byte format: the bytes a party hands the PSI for one record and one cascade
//! step (`papers/protocol.md`, "Match-key bytes"). Both parties must produce identical bytes
//! for the same person, so the format is part of the interface: a second front end that
//! builds keys itself must follow it exactly.
//!
//! For each column of the step, in order: the value (for a combined column, its CSV values
//! trimmed, the empty ones left out, joined by one space: [`join_parts`]) is normalised with the
//! column's steps, then appended as its byte length (`u32`, little-endian) followed by its
//! UTF-8 bytes. The length prefix keeps `ab|c` and `a|bc` apart. A record whose value is
//! missing, rejected by normalisation or empty after it has no key for that step
//! ([`Keyless`]); it can still link by a later step.

use blindlink_encoding::normalise::{NormaliseStep, Pipeline};

use crate::PartyError;
use crate::config::MatchKeySpec;

/// Joins the trimmed, non-empty `parts` with one space into `out` (cleared first): how a
/// combined column (`[input] combined_columns`) becomes one value, for match keys and for the
/// schema's fields alike.
///
/// # Example
/// ```
/// let mut out = String::new();
/// blindlink_party::join_parts([" 山田 ", "", "太郎"], &mut out);
/// assert_eq!(out, "山田 太郎");
/// ```
pub fn join_parts<'a>(parts: impl IntoIterator<Item = &'a str>, out: &mut String) {
    out.clear();
    for part in parts {
        let part = part.trim();
        if !part.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(part);
        }
    }
}

/// Why a record has no key for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyless {
    /// The column whose value was missing or rejected.
    pub column: String,
    /// Why.
    pub reason: String,
}

/// One cascade step's columns with their parsed normalisation pipelines.
#[derive(Debug, Clone)]
pub struct MatchKeyEncoder {
    name: String,
    columns: Vec<(String, Pipeline)>,
}

impl MatchKeyEncoder {
    /// The encoder of `spec`.
    ///
    /// # Errors
    /// A normalisation step name is unknown (a parsed [`PartyConfig`](crate::PartyConfig) has
    /// checked them already).
    pub fn new(spec: &MatchKeySpec) -> Result<Self, PartyError> {
        let columns = spec
            .columns
            .iter()
            .map(|c| {
                Pipeline::parse(&c.normalise)
                    .map(|p| (c.column.clone(), p))
                    .map_err(|e| PartyError::Input {
                        context: format!("match key '{}'", spec.name),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: spec.name.clone(),
            columns,
        })
    }

    /// The step's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether column `i` of the step has a date step (its era dates may be read leniently).
    #[must_use]
    pub fn column_has_date_step(&self, i: usize) -> bool {
        self.columns.get(i).is_some_and(|(_, p)| has_date_step(p))
    }

    /// The key of one record: `values[i]` is the raw value of the step's column `i` (combined
    /// columns already joined with [`join_parts`]).
    ///
    /// # Errors
    /// [`Keyless`] when a value is missing, normalisation rejects it or leaves nothing.
    ///
    /// # Example
    /// ```
    /// use blindlink_party::{KeyColumn, MatchKeyEncoder, MatchKeySpec};
    /// let spec = MatchKeySpec { name: "id".into(), columns: vec![
    ///     KeyColumn { column: "number".into(), normalise: vec!["digits-only".into()] }] };
    /// let key = MatchKeyEncoder::new(&spec).unwrap().encode(&["12-34"]).unwrap();
    /// assert_eq!(key, b"\x04\x00\x00\x001234");
    /// ```
    pub fn encode(&self, values: &[&str]) -> Result<Vec<u8>, Keyless> {
        let mut key = Vec::with_capacity(64);
        for ((column, pipeline), raw) in self.columns.iter().zip(values) {
            let keyless = |reason: String| Keyless {
                column: column.clone(),
                reason,
            };
            if raw.trim().is_empty() {
                return Err(keyless("the value is missing".to_owned()));
            }
            let value = pipeline.apply(raw).map_err(|e| keyless(e.to_string()))?;
            if value.is_empty() {
                return Err(keyless("the value is empty after normalisation".to_owned()));
            }
            let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
            key.extend_from_slice(&len.to_le_bytes());
            key.extend_from_slice(value.as_bytes());
        }
        Ok(key)
    }
}

/// Whether `pipeline` has a date step (`date`, `date-dmy`, `date-mdy`): its column's era dates
/// may be read leniently (`[input] era_dates = "lenient"`).
#[must_use]
pub fn has_date_step(pipeline: &Pipeline) -> bool {
    pipeline.steps().iter().any(|s| {
        matches!(
            s,
            NormaliseStep::Date | NormaliseStep::DateDayFirst | NormaliseStep::DateMonthFirst
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyColumn;

    /// Encodes `values` under a key of `columns` (column name, steps) and returns the bytes
    /// in hex, or `keyless: column: reason`.
    fn check(columns: &[(&str, &[&str])], values: &[&str], expected: &str) {
        let spec = MatchKeySpec {
            name: "k".to_owned(),
            columns: columns
                .iter()
                .map(|(c, steps)| KeyColumn {
                    column: (*c).to_owned(),
                    normalise: steps.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
        };
        let got = match MatchKeyEncoder::new(&spec).unwrap().encode(values) {
            Ok(bytes) => hex::encode(bytes),
            Err(k) => format!("keyless: {}: {}", k.column, k.reason),
        };
        assert_eq!(got, expected, "{values:?}");
    }

    /// The golden vectors of `papers/protocol.md`, "Match-key bytes".
    #[test]
    fn golden_vectors() {
        let my_number: &[(&str, &[&str])] = &[("my_number", &["my-number"])];
        // 12 digits: length 12 (0c000000), then the ASCII digits.
        check(
            my_number,
            &["1234 5678 9018"],
            "0c000000313233343536373839303138",
        );
        check(
            my_number,
            &["１２３４５６７８９０１８"],
            "0c000000313233343536373839303138",
        );
        let kana_dob_sex: &[(&str, &[&str])] = &[
            (
                "name_kana",
                &["nfkc", "halfwidth-kana", "katakana", "strip-whitespace"],
            ),
            ("date_of_birth", &["date"]),
            ("sex", &["sex"]),
        ];
        // ヤマダタロウ is 18 bytes of UTF-8 (0x12), 1985-04-03 is 10 (0x0a), and the sex
        // step writes male as its ISO/IEC 5218 code `1`.
        let golden = "12000000e383a4e3839ee38380e382bfe383ade382a6\
                      0a000000313938352d30342d3033\
                      0100000031";
        check(kana_dob_sex, &["やまだ たろう", "1985-04-03", "M"], golden);
        check(kana_dob_sex, &["ﾔﾏﾀﾞ ﾀﾛｳ", "S60.4.3", "男"], golden);
        // The length prefix keeps column boundaries: ab|c and a|bc differ.
        let two: &[(&str, &[&str])] = &[("a", &[]), ("b", &[])];
        check(two, &["ab", "c"], "0200000061620100000063");
        check(two, &["a", "bc"], "0100000061020000006263");
    }

    #[test]
    fn rows_without_a_key_say_why() {
        let my_number: &[(&str, &[&str])] = &[("my_number", &["my-number"])];
        check(
            my_number,
            &["  "],
            "keyless: my_number: the value is missing",
        );
        check(
            my_number,
            &["123456789010"],
            "keyless: my_number: my number check digit is 0, expected 8",
        );
        check(
            &[("x", &["digits-only"])],
            &["abc"],
            "keyless: x: the value is empty after normalisation",
        );
    }

    #[test]
    fn join_parts_trims_and_skips_empty_parts() {
        let mut out = String::from("stale");
        join_parts(["", "  "], &mut out);
        assert_eq!(out, "");
        join_parts([" a", "b ", "", "c"], &mut out);
        assert_eq!(out, "a b c");
    }
}
