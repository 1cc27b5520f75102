//! blindlink's native schema (TOML) and its encoder: normalisation pipelines, keyed SHA3
//! hashing with per-field keys, three filter layouts and ordered hardening.
//!
//! ```toml
//! version = 1
//!
//! [filter]
//! bits = 1024
//! layout = "clk"            # "clk" (one filter), "rbf" (record-level, per-field sampling)
//!                           # or "per-field" (one filter per field, concatenated)
//!
//! [[field]]
//! column = "surname"        # CSV column
//! normalise = ["nfkc", "itaiji", "katakana", "whitespace"]
//! tokens = { kind = "ngram", n = 2 }   # or kind = "exact", or "numeric" (threshold, resolution)
//! bits_per_token = 20       # or bits_per_field = 200
//! missing = "skip"          # "skip" (encode nothing), "reject", or { replace = "..." }
//! missing_values = ["", "不明"]
//! # validate's comparison levels, best first (optional; default: from the token kind).
//! # m and u (optional, on every level or none) fix the model instead of fitting it.
//! levels = [
//!   { label = "exact", min_dice = 1.0 },
//!   { label = "close", min_dice = 0.8 },
//!   { label = "different", min_dice = 0.0, veto = true },   # flags the pair on its own
//! ]
//!
//! [[harden]]
//! step = "balance"          # xor-fold, balance, salt, blip, rule90, permute
//! ```
//!
//! A value is missing when, trimmed, it is one of `missing_values` (default `[""]`) or when
//! normalisation leaves it empty.

use serde::Deserialize;

use crate::EncodingError;
use crate::clkhash::Comparison;
use crate::harden::HardeningStep;
use crate::normalise::Pipeline;

/// How the fields' tokens are laid out in the CLK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One Bloom filter for the whole record (Schnell's CLK).
    #[default]
    Clk,
    /// Record-level Bloom filter (Durham): each field has its own filter, and the record
    /// filter samples `rbf_sample` bits from each, in a keyed order.
    Rbf,
    /// One filter per field, concatenated in schema order.
    PerField,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    version: i64,
    filter: RawFilter,
    #[serde(default, rename = "field")]
    fields: Vec<RawField>,
    #[serde(default, rename = "harden")]
    hardening: Vec<RawHarden>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    bits: usize,
    #[serde(default)]
    layout: Layout,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    column: String,
    #[serde(default)]
    normalise: Vec<String>,
    tokens: RawTokens,
    bits_per_token: Option<u32>,
    bits_per_field: Option<u32>,
    #[serde(default)]
    missing: RawMissing,
    missing_values: Option<Vec<String>>,
    /// `rbf` layout: length of this field's own filter.
    rbf_bits: Option<usize>,
    /// `rbf` layout: bits of the record filter taken from this field's filter.
    rbf_sample: Option<usize>,
    /// `per-field` layout: length of this field's filter.
    bits: Option<usize>,
    /// `validate`'s comparison levels, best first.
    levels: Option<Vec<RawLevel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    label: String,
    min_dice: f64,
    #[serde(default)]
    veto: bool,
    m: Option<f64>,
    u: Option<f64>,
}

/// One comparison level of a field as the schema declares it (`levels = [{ label, min_dice,
/// veto, m, u }]`): `validate` turns it into a Fellegi–Sunter comparison level, which checks
/// the levels as a whole (bounds strictly decreasing, the last 0, vetoes only at the worst
/// levels).
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredLevel {
    /// Its name in explanations and `model.json`.
    pub label: String,
    /// The lowest Dice coefficient of a pair's field at this level.
    pub min_dice: f64,
    /// A pair whose field is at this level is flagged whatever its match probability.
    pub veto: bool,
    /// P(level | match), given instead of estimated (given on every level of the field or none).
    pub m: Option<f64>,
    /// P(level | non-match), given instead of estimated (on every level or none).
    pub u: Option<f64>,
}

/// How a field's tokens are made (the schema's `tokens.kind`), which decides its default
/// comparison levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldTokenKind {
    /// `kind = "exact"`: the whole normalised value is one token.
    Exact,
    /// `kind = "ngram"`, `positional = true`: characters tagged with their position.
    PositionalNgram,
    /// `kind = "ngram"`: q-grams of the value.
    Ngram,
    /// `kind = "numeric"`: numeric neighbourhood tokens.
    Numeric,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum RawTokens {
    Ngram {
        n: usize,
        #[serde(default)]
        positional: bool,
    },
    Exact,
    Numeric {
        threshold: f64,
        resolution: i64,
        #[serde(default)]
        precision: i64,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum RawMissing {
    #[default]
    #[serde(skip)]
    Default,
    Policy(String),
    Replace {
        replace: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case", deny_unknown_fields)]
enum RawHarden {
    XorFold {
        #[serde(default = "one")]
        times: u32,
    },
    Balance,
    Salt {
        column: String,
    },
    Blip {
        epsilon: f64,
    },
    Rule90,
    Permute,
}

fn one() -> u32 {
    1
}

/// What to do with a missing value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingPolicy {
    /// Encode nothing for the field.
    Skip,
    /// Reject the record.
    Reject,
    /// Encode this text instead.
    Replace(String),
}

/// Bits inserted per token or per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Every token sets this many bits.
    BitsPerToken(u32),
    /// The field sets this many bits in total, spread over its tokens (first tokens get the
    /// remainder).
    BitsPerField(u32),
}

impl Weight {
    pub(crate) fn k(self, index: usize, count: usize) -> u32 {
        match self {
            Self::BitsPerToken(k) => k,
            Self::BitsPerField(total) => crate::bits::token_share(total, index, count),
        }
    }
}

/// One field of a native schema.
#[derive(Debug, Clone)]
pub struct NativeField {
    /// CSV column.
    pub column: String,
    pipeline: Pipeline,
    comparison: Comparison,
    /// Bits per token or per field.
    pub weight: Weight,
    /// Missing-value policy.
    pub missing: MissingPolicy,
    missing_values: Vec<String>,
    /// Bits of this field's own filter (`rbf` and `per-field` layouts), or the CLK length.
    pub own_bits: usize,
    /// `rbf`: bits of the record filter sampled from this field.
    pub rbf_sample: usize,
    /// `validate`'s comparison levels as declared (`levels = [...]`), best first; `None`
    /// when the schema declares none (the token kind's defaults apply).
    pub levels: Option<Vec<DeclaredLevel>>,
}

impl NativeField {
    /// The text a raw value's tokens are taken from: the missing-value policy applied (`""`
    /// for a skipped missing value, the replacement for a replaced one), else the value
    /// through the field's normalisation pipeline. The encoder and
    /// [`FieldTokenizer`](crate::FieldTokenizer) both go through here, so a field's tokens are
    /// the same whichever of the two asks.
    ///
    /// # Errors
    /// [`EncodingError::InvalidValue`] naming the column when a missing value is not allowed
    /// or normalisation rejects the value.
    pub(crate) fn text<'a>(
        &'a self,
        raw: &str,
        normalised: &'a mut String,
        normalise_scratch: &mut String,
    ) -> Result<&'a str, EncodingError> {
        if self.missing_values.iter().any(|m| m == raw.trim()) {
            return match &self.missing {
                MissingPolicy::Skip => Ok(""),
                MissingPolicy::Reject => Err(EncodingError::invalid(&self.column, "missing value")),
                MissingPolicy::Replace(r) => Ok(r),
            };
        }
        self.pipeline
            .apply_into(raw, normalised, normalise_scratch)
            .map_err(|e| EncodingError::invalid(&self.column, e.to_string()))?;
        if normalised.is_empty() && self.missing == MissingPolicy::Reject {
            return Err(EncodingError::invalid(
                &self.column,
                "missing value (empty after normalisation)",
            ));
        }
        Ok(normalised)
    }

    /// Emits the tokens of `text` (from [`NativeField::text`]) in order, repeats included;
    /// nothing for an empty text. `chars` and `buf` are reusable buffers.
    ///
    /// # Errors
    /// [`EncodingError::InvalidValue`] when a numeric field's text is not a number.
    pub(crate) fn tokens(
        &self,
        text: &str,
        chars: &mut Vec<char>,
        buf: &mut String,
        emit: impl FnMut(&str),
    ) -> Result<(), EncodingError> {
        self.comparison
            .tokens(text, chars, buf, emit)
            .map_err(|r| EncodingError::invalid(&self.column, r))
    }

    /// The field's normalisation pipeline (read-only: e.g. to tell which columns hold dates).
    #[must_use]
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Whether the field's one token is its whole normalised value (`tokens = { kind =
    /// "exact" }`, as for a date of birth or a sex): two values agree completely or not at all.
    #[must_use]
    pub fn has_exact_token(&self) -> bool {
        matches!(self.comparison, Comparison::Exact)
    }

    /// How the field's tokens are made.
    #[must_use]
    pub fn token_kind(&self) -> FieldTokenKind {
        match self.comparison {
            Comparison::Exact => FieldTokenKind::Exact,
            Comparison::Ngram {
                positional: true, ..
            } => FieldTokenKind::PositionalNgram,
            Comparison::Ngram { .. } => FieldTokenKind::Ngram,
            Comparison::Numeric { .. } => FieldTokenKind::Numeric,
        }
    }
}

/// A parsed native schema.
#[derive(Debug, Clone)]
pub struct NativeSchema {
    /// Filter length in bits before hardening.
    pub bits: usize,
    /// Layout of the fields.
    pub layout: Layout,
    /// The fields, in order.
    pub fields: Vec<NativeField>,
    /// Hardening steps, in order.
    pub hardening: Vec<HardeningStep>,
}

const MAX_BITS: usize = 1 << 16;

impl NativeSchema {
    /// Parses a native TOML schema.
    ///
    /// # Errors
    /// [`EncodingError::Schema`] naming the TOML location (`field[1] 'surname'.tokens`) and
    /// what is wrong: TOML syntax (with line and column), unknown keys, a missing weight,
    /// unknown normalisation steps, inconsistent layout sizes, a salt column that is also a
    /// field.
    ///
    /// # Example
    /// ```
    /// use blindlink_encoding::native::NativeSchema;
    /// let schema = NativeSchema::parse(r#"
    ///     version = 1
    ///     [filter]
    ///     bits = 512
    ///     [[field]]
    ///     column = "name"
    ///     tokens = { kind = "ngram", n = 2 }
    /// "#);
    /// assert_eq!(
    ///     schema.unwrap_err().to_string(),
    ///     "field[0] 'name': give exactly one of bits_per_token or bits_per_field"
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<Self, EncodingError> {
        let raw: RawSchema = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}")
                }
                None => "(document)".to_owned(),
            };
            EncodingError::schema(location, e.message().to_owned())
        })?;
        if raw.version != 1 {
            return Err(EncodingError::schema(
                "version",
                format!(
                    "native schema version {} is not supported (only 1)",
                    raw.version
                ),
            ));
        }
        let bits = raw.filter.bits;
        if bits == 0 || bits > MAX_BITS {
            return Err(EncodingError::schema(
                "filter.bits",
                format!("{bits} is outside 1..={MAX_BITS}"),
            ));
        }
        if raw.fields.is_empty() {
            return Err(EncodingError::schema(
                "field",
                "the schema has no [[field]]",
            ));
        }
        let layout = raw.filter.layout;
        let mut fields = Vec::new();
        let mut problems = Vec::new();
        for (i, f) in raw.fields.into_iter().enumerate() {
            // Every field is checked, so `schema check` lists all broken fields at once.
            let parsed = (|| -> Result<NativeField, EncodingError> {
                let at = format!("field[{i}] '{}'", f.column);
                let err = |key: &str, message: String| {
                    EncodingError::schema(
                        if key.is_empty() {
                            at.clone()
                        } else {
                            format!("{at}.{key}")
                        },
                        message,
                    )
                };
                if f.column.is_empty() {
                    return Err(err("column", "the column name is empty".into()));
                }
                if fields.iter().any(|g: &NativeField| g.column == f.column) {
                    return Err(err(
                        "column",
                        format!("column '{}' is used by two fields", f.column),
                    ));
                }
                let pipeline =
                    Pipeline::parse(&f.normalise).map_err(|e| err("normalise", e.to_string()))?;
                let comparison = match f.tokens {
                    RawTokens::Ngram { n, positional } => {
                        if !(1..=16).contains(&n) {
                            return Err(err("tokens.n", format!("{n} is outside 1..=16")));
                        }
                        Comparison::Ngram { n, positional }
                    }
                    RawTokens::Exact => Comparison::Exact,
                    RawTokens::Numeric {
                        threshold,
                        resolution,
                        precision,
                    } => Comparison::numeric(threshold, resolution, precision)
                        .map_err(|e| err("tokens", e))?,
                };
                let weight = match (f.bits_per_token, f.bits_per_field) {
                    (Some(k), None) if (1..=256).contains(&k) => Weight::BitsPerToken(k),
                    (None, Some(k)) if (1..=4096).contains(&k) => Weight::BitsPerField(k),
                    (Some(k), None) => {
                        return Err(err("bits_per_token", format!("{k} is outside 1..=256")));
                    }
                    (None, Some(k)) => {
                        return Err(err("bits_per_field", format!("{k} is outside 1..=4096")));
                    }
                    _ => {
                        return Err(err(
                            "",
                            "give exactly one of bits_per_token or bits_per_field".into(),
                        ));
                    }
                };
                let missing = match f.missing {
                    RawMissing::Default => MissingPolicy::Skip,
                    RawMissing::Policy(p) if p == "skip" => MissingPolicy::Skip,
                    RawMissing::Policy(p) if p == "reject" => MissingPolicy::Reject,
                    RawMissing::Policy(p) => {
                        return Err(err(
                            "missing",
                            format!("'{p}' is not \"skip\", \"reject\" or {{ replace = \"...\" }}"),
                        ));
                    }
                    RawMissing::Replace { replace } => MissingPolicy::Replace(replace),
                };
                let (own_bits, rbf_sample) = match layout {
                    Layout::Clk => {
                        if f.rbf_bits.is_some() || f.rbf_sample.is_some() || f.bits.is_some() {
                            return Err(err(
                            "",
                            "rbf_bits, rbf_sample and bits belong to the rbf and per-field layouts"
                                .into(),
                        ));
                        }
                        (bits, 0)
                    }
                    Layout::Rbf => {
                        let own = f.rbf_bits.ok_or_else(|| {
                            err(
                                "rbf_bits",
                                "the rbf layout needs each field's rbf_bits".into(),
                            )
                        })?;
                        let sample = f.rbf_sample.ok_or_else(|| {
                            err(
                                "rbf_sample",
                                "the rbf layout needs each field's rbf_sample".into(),
                            )
                        })?;
                        if own == 0 || own > MAX_BITS {
                            return Err(err(
                                "rbf_bits",
                                format!("{own} is outside 1..={MAX_BITS}"),
                            ));
                        }
                        (own, sample)
                    }
                    Layout::PerField => {
                        let own = f.bits.ok_or_else(|| {
                            err(
                                "bits",
                                "the per-field layout needs each field's bits".into(),
                            )
                        })?;
                        if own == 0 {
                            return Err(err("bits", "must be at least 1".into()));
                        }
                        (own, 0)
                    }
                };
                let levels = match f.levels {
                    None => None,
                    Some(raw) => Some(parse_levels(raw).map_err(|m| err("levels", m))?),
                };
                Ok(NativeField {
                    levels,
                    column: f.column,
                    pipeline,
                    comparison,
                    weight,
                    missing,
                    missing_values: f.missing_values.unwrap_or_else(|| vec![String::new()]),
                    own_bits,
                    rbf_sample,
                })
            })();
            match parsed {
                Ok(field) => fields.push(field),
                Err(e) => problems.push(e),
            }
        }
        if let Some(e) = EncodingError::combine(problems) {
            return Err(e);
        }
        match layout {
            Layout::Rbf => {
                let total: usize = fields.iter().map(|f| f.rbf_sample).sum();
                if total != bits {
                    return Err(EncodingError::schema(
                        "filter.bits",
                        format!(
                            "the rbf_sample of the fields add up to {total}, not to filter.bits = {bits}"
                        ),
                    ));
                }
            }
            Layout::PerField => {
                let total: usize = fields.iter().map(|f| f.own_bits).sum();
                if total != bits {
                    return Err(EncodingError::schema(
                        "filter.bits",
                        format!(
                            "the bits of the fields add up to {total}, not to filter.bits = {bits}"
                        ),
                    ));
                }
            }
            Layout::Clk => {}
        }
        let mut hardening = Vec::new();
        let mut length = bits;
        for (i, h) in raw.hardening.into_iter().enumerate() {
            let at = format!("harden[{i}]");
            let step = match h {
                RawHarden::XorFold { times } => {
                    if times == 0 || length >> times < 8 {
                        return Err(EncodingError::schema(
                            at,
                            format!("folding {length} bits {times} times leaves fewer than 8 bits"),
                        ));
                    }
                    length >>= times;
                    HardeningStep::XorFold { times }
                }
                RawHarden::Balance => {
                    length *= 2;
                    if length > 2 * MAX_BITS {
                        return Err(EncodingError::schema(at, "the balanced filter is too long"));
                    }
                    HardeningStep::Balance
                }
                RawHarden::Salt { column } => {
                    if fields.iter().any(|f| f.column == column) {
                        return Err(EncodingError::schema(
                            at,
                            format!(
                                "the salt column '{column}' is also a field: salt with a value that is not encoded"
                            ),
                        ));
                    }
                    if hardening
                        .iter()
                        .any(|s| matches!(s, HardeningStep::Salt { .. }))
                    {
                        return Err(EncodingError::schema(at, "only one salt step is allowed"));
                    }
                    HardeningStep::Salt { column }
                }
                RawHarden::Blip { epsilon } => {
                    if !(epsilon.is_finite() && epsilon > 0.0) {
                        return Err(EncodingError::schema(
                            at,
                            format!("epsilon must be a positive number, found {epsilon}"),
                        ));
                    }
                    HardeningStep::Blip { epsilon }
                }
                RawHarden::Rule90 => HardeningStep::Rule90,
                RawHarden::Permute => HardeningStep::Permute,
            };
            hardening.push(step);
        }
        Ok(Self {
            bits,
            layout,
            fields,
            hardening,
        })
    }

    /// The CSV columns a record needs, in the order [`NativeEncoder::encode`] takes values:
    /// the fields, then the salt column if any.
    #[must_use]
    pub fn columns(&self) -> Vec<&str> {
        let mut columns: Vec<&str> = self.fields.iter().map(|f| f.column.as_str()).collect();
        columns.extend(self.salt_column());
        columns
    }

    pub(crate) fn salt_column(&self) -> Option<&str> {
        self.hardening.iter().find_map(|s| match s {
            HardeningStep::Salt { column } => Some(column.as_str()),
            _ => None,
        })
    }

    /// CLK length in bits after hardening.
    #[must_use]
    pub fn output_bits(&self) -> usize {
        self.hardening
            .iter()
            .fold(self.bits, |len, step| match step {
                HardeningStep::XorFold { times } => len >> times,
                HardeningStep::Balance => len * 2,
                _ => len,
            })
    }
}

/// The declared levels, each checked on its own (the comparison checks them as a whole).
fn parse_levels(raw: Vec<RawLevel>) -> Result<Vec<DeclaredLevel>, String> {
    if raw.is_empty() {
        return Err("no level declared (leave levels out for the token kind's defaults)".into());
    }
    let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
    for (what, given) in [
        ("m", raw.iter().filter(|l| l.m.is_some()).count()),
        ("u", raw.iter().filter(|l| l.u.is_some()).count()),
    ] {
        if given != 0 && given != raw.len() {
            return Err(format!(
                "{what} is given on {given} of {} levels: give it on every level or none",
                raw.len()
            ));
        }
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, l)| {
            if l.label.is_empty() {
                return Err(format!("level {i} has an empty label"));
            }
            for (what, value) in [("min_dice", Some(l.min_dice)), ("m", l.m), ("u", l.u)] {
                if let Some(v) = value
                    && !unit(v)
                {
                    return Err(format!(
                        "level '{}' has {what} {v}, expected a number in [0, 1]",
                        l.label
                    ));
                }
            }
            Ok(DeclaredLevel {
                label: l.label,
                min_dice: l.min_dice,
                veto: l.veto,
                m: l.m,
                u: l.u,
            })
        })
        .collect()
}

mod encoder;
pub use encoder::{NativeEncoder, NativeScratch};

#[cfg(test)]
mod tests;
