//! clkhash's comparisons: how a canonical value becomes tokens (`ngram`, `exact`, `numeric`).

/// A clkhash `comparison`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Comparison {
    /// n-grams of characters, padded with `n - 1` spaces on both sides when `n > 1`; positional
    /// n-grams are prefixed with their 1-based position and a space.
    Ngram { n: usize, positional: bool },
    /// The whole value is one token.
    Exact,
    /// Vatsalan and Christen's numeric neighbourhood tokens.
    Numeric {
        distance_interval: i128,
        resolution: i128,
        fractional_precision: u32,
    },
}

impl Comparison {
    /// Builds a numeric comparison as clkhash's `NumericComparison.__init__` does.
    pub(crate) fn numeric(threshold: f64, resolution: i64, precision: i64) -> Result<Self, String> {
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(format!(
                "thresholdDistance has to be positive, but was {threshold}"
            ));
        }
        if resolution < 1 {
            return Err(format!(
                "resolution has to be greater than zero, but was {resolution}"
            ));
        }
        // Each value makes 2 · resolution + 1 tokens: bound the work a schema can ask for.
        if resolution > 10_000 {
            return Err(format!(
                "resolution {resolution} is larger than the 10000 supported"
            ));
        }
        let precision = u32::try_from(precision)
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| {
                format!("fractional_precision must be in 0..=30, but was {precision}")
            })?;
        let scaled = (threshold * 10f64.powi(precision as i32)).round_ties_even();
        if !(scaled.is_finite() && scaled.abs() < 1e30) {
            return Err("thresholdDistance is too large".into());
        }
        let distance_interval = scaled as i128;
        if distance_interval == 0 {
            return Err("not enough fractional precision to encode thresholdDistance".into());
        }
        Ok(Self::Numeric {
            distance_interval,
            resolution: i128::from(resolution),
            fractional_precision: precision,
        })
    }

    /// Calls `emit` with every token of `value`, in clkhash's order; `buf` is reused scratch.
    /// Returns `Err(reason)` when a numeric value is not a number.
    pub(crate) fn tokens(
        &self,
        value: &str,
        chars: &mut Vec<char>,
        buf: &mut String,
        mut emit: impl FnMut(&str),
    ) -> Result<(), String> {
        if value.is_empty() {
            return Ok(());
        }
        match self {
            Self::Exact => emit(value),
            Self::Ngram { n, positional } => {
                let n = *n;
                chars.clear();
                let pad = n.saturating_sub(1);
                chars.extend(std::iter::repeat_n(' ', pad));
                chars.extend(value.chars());
                chars.extend(std::iter::repeat_n(' ', pad));
                if chars.len() < n {
                    return Ok(());
                }
                for i in 0..=chars.len() - n {
                    buf.clear();
                    if *positional {
                        use std::fmt::Write as _;
                        let _ = write!(buf, "{} ", i + 1);
                    }
                    buf.extend(&chars[i..i + n]);
                    emit(buf);
                }
            }
            Self::Numeric {
                distance_interval,
                resolution,
                fractional_precision,
            } => {
                let di = *distance_interval;
                let v = numeric_value(value, *fractional_precision)
                    .ok_or_else(|| format!("'{value}' is not a number"))?;
                let v = v
                    .checked_mul(2 * resolution)
                    .ok_or_else(|| format!("'{value}' is too large"))?;
                let residue = v.rem_euclid(di);
                let centre = if residue == 0 {
                    v
                } else if 2 * residue < di {
                    v - residue
                } else {
                    v + (di - residue)
                };
                for i in -resolution..=*resolution {
                    buf.clear();
                    use std::fmt::Write as _;
                    let _ = write!(buf, "{}", centre + i * di);
                    emit(buf);
                }
            }
        }
        Ok(())
    }
}

/// clkhash's quantisation of a numeric value: `int()` first (exact), else `float()`.
fn numeric_value(value: &str, precision: u32) -> Option<i128> {
    if let Some(v) = super::formats::parse_python_int(value) {
        return v.checked_mul(10i128.checked_pow(precision)?);
    }
    let f: f64 = value.trim().parse().ok()?;
    let scaled = if precision > 0 {
        (f * 10f64.powi(precision as i32)).round_ties_even()
    } else {
        f.trunc()
    };
    (scaled.is_finite() && scaled.abs() < 1e36).then_some(scaled as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(comparison: &Comparison, value: &str, expected: &[&str]) {
        let mut got = Vec::new();
        comparison
            .tokens(value, &mut Vec::new(), &mut String::new(), |t| {
                got.push(t.to_owned())
            })
            .unwrap();
        assert_eq!(got, expected, "{comparison:?} on {value:?}");
    }

    #[test]
    fn token_cases() {
        let bigram = Comparison::Ngram {
            n: 2,
            positional: false,
        };
        let positional = Comparison::Ngram {
            n: 2,
            positional: true,
        };
        let unigram_pos = Comparison::Ngram {
            n: 1,
            positional: true,
        };
        check(&bigram, "abc", &[" a", "ab", "bc", "c "]);
        check(&bigram, "", &[]);
        check(&bigram, "髙橋", &[" 髙", "髙橋", "橋 "]);
        check(&positional, "ab", &["1  a", "2 ab", "3 b "]);
        check(&unigram_pos, "42", &["1 4", "2 2"]);
        check(&Comparison::Exact, "x y", &["x y"]);
        // The docstring's example: threshold 8, resolution 2, x = 25.
        let numeric = Comparison::numeric(8.0, 2, 0).unwrap();
        check(&numeric, "25", &["88", "96", "104", "112", "120"]);
        check(&numeric, "24.99", &["80", "88", "96", "104", "112"]);
        let precise = Comparison::numeric(0.5, 1, 1).unwrap();
        check(&precise, "1.25", &["20", "25", "30"]);
    }

    #[test]
    fn numeric_rejects_text() {
        let numeric = Comparison::numeric(8.0, 2, 0).unwrap();
        let err = numeric.tokens("abc", &mut Vec::new(), &mut String::new(), |_| {});
        assert_eq!(err, Err("'abc' is not a number".to_owned()));
        assert_eq!(
            Comparison::numeric(0.01, 1, 0).unwrap_err(),
            "not enough fractional precision to encode thresholdDistance"
        );
    }
}

#[cfg(test)]
mod bounds {
    use super::Comparison;

    #[test]
    fn resolution_is_bounded() {
        assert_eq!(
            Comparison::numeric(1.0, 10_001, 0).unwrap_err(),
            "resolution 10001 is larger than the 10000 supported"
        );
    }
}
