//! What a party brings to a run: its records ([`PartyData`]) and the per-mode configuration
//! ([`ModeConfig`]) whose [`ModeConfig::parameters`] the handshake commits to.

use blindlink_matching::LshParameters;
use blindlink_psi::SizeBuckets;
use hmac::{KeyInit, Mac};

use super::BlockingSecret;
use super::data::PartyData;
use super::fuzzy::BlockingInput;
use blindlink_matching::fellegi_sunter::{
    Comparisons, DEFAULT_PROBABILITY_THRESHOLD, EmSettings, FieldComparison, TokenKind,
};

use super::score::FieldScoring;
use crate::{Mode, Parameters, ProtocolError, Role};

/// Most records one party may bring to a session.
pub const MAX_RECORDS: usize = 1 << 24;
/// Most match keys in a cascade.
pub const MAX_MATCH_KEYS: usize = 8;
/// Most compared fields per record (`validate`, `fuzzy`).
pub const MAX_FIELDS: usize = 16;
/// Most tokens of one field of one record.
pub const MAX_FIELD_TOKENS: usize = 256;
/// Longest token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 1024;

/// The tokens of one compared field of one record (q-grams of a name or address, or the one
/// normalised value of an exact field), as a multiset; empty when the field is missing.
///
/// # Security
/// Tokens are personal data in the clear. They never leave this party: the grouped PSI sends
/// only blinded points derived from them.
pub type FieldTokens = Vec<Vec<u8>>;

/// One record of this party.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PartyRecord {
    /// The local record id (written back in the link file, never sent).
    pub id: String,
    /// Normalised match-key values, one per [`ModeConfig::keys`] in that order; `None` when
    /// the record lacks that key. Ignored by the modes that take no key (`fuzzy`,
    /// `clk-exchange`).
    pub keys: Vec<Option<Vec<u8>>>,
    /// The record-level CLK (`filter_bits / 8` bytes): `fuzzy`'s local MinHash blocking input
    /// (it stays on this side) and `clk-exchange`'s payload (it is sent).
    pub clk: Option<Vec<u8>>,
    /// `validate` and `fuzzy`: one entry per compared field, in the order of the mode's
    /// `fields` (the schema's field order).
    pub fields: Vec<FieldTokens>,
}

impl std::fmt::Debug for PartyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys, CLKs and tokens are personal data: show their shape only.
        f.debug_struct("PartyRecord")
            .field("id", &self.id)
            .field("keys", &self.keys.len())
            .field("clk", &self.clk.as_ref().map(Vec::len))
            .field("fields", &self.fields.len())
            .finish()
    }
}

/// `cardinality`: ECDH-PSI cardinality on one match key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CardinalityConfig {
    /// The match key (e.g. `my_number`).
    pub key: String,
    /// Send the responder's set as a Bloom filter with this false-positive rate over the whole
    /// query instead of as raw points (the initiator then does not learn the responder's set
    /// size exactly).
    pub bloom_fpr: Option<f64>,
}

impl CardinalityConfig {
    /// Cardinality on `key`, with raw points (no Bloom filter).
    #[must_use]
    pub fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            bloom_fpr: None,
        }
    }
}

/// `exact`: mutual ECDH-PSI on a cascade of match keys.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExactConfig {
    /// Names of the match keys in cascade order (e.g. `my_number`, `kana+dob+sex`).
    pub keys: Vec<String>,
}

impl ExactConfig {
    /// The cascade of `keys`, in this order.
    #[must_use]
    pub fn new(keys: Vec<String>) -> Self {
        Self { keys }
    }
}

/// `validate`: `exact` on the ID key, then every linked pair's fields compared through the
/// grouped PSI cardinality (no CLK or field filter crosses the wire), then Fellegi–Sunter
/// scoring on the comparing side: each pair's agreement pattern from its counts, m, u and the
/// prior fitted by EM over the session's linked pairs (or fixed in [`ValidateConfig::em`]),
/// a match probability per pair, flagged below [`ValidateConfig::threshold`] or on a veto
/// level.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ValidateConfig {
    /// The ID match key (e.g. `my_number`).
    pub key: String,
    /// The compared fields, in the order of [`PartyRecord::fields`], with their comparison
    /// levels and vetoes.
    pub comparisons: Comparisons,
    /// How m, u and λ are found: EM by default; any of them may be fixed. Only the comparing
    /// side uses it.
    pub em: EmSettings,
    /// A pair whose match probability is below this is flagged as a suspected wrong-person
    /// link (default [`DEFAULT_PROBABILITY_THRESHOLD`], 0.5).
    pub threshold: f64,
    /// The side that learns the per-pair shared-token counts and scores the pairs.
    pub comparing: Role,
    /// The size buckets token counts are padded to in the grouped PSI (a handshake
    /// parameter).
    pub buckets: SizeBuckets,
    /// Pairs per batch of the grouped PSI (1 to 65,536; default 2,048): the pairs are
    /// compared a batch at a time, one query and one reply each. A handshake parameter
    /// (`grouped.batch_pairs`, listed only when not the default).
    pub batch_pairs: usize,
}

impl ValidateConfig {
    /// Validate on the ID key `key`, comparing `fields` with the default comparison of each
    /// ([`ValidateConfig::default_comparisons`]), EM, the default threshold (0.5), the
    /// initiator comparing and the default size buckets. Set
    /// [`ValidateConfig::comparisons`] for declared levels.
    #[must_use]
    pub fn new(key: &str, fields: Vec<FieldScoring>) -> Self {
        Self {
            key: key.to_owned(),
            comparisons: Self::default_comparisons(&fields),
            em: EmSettings::default(),
            threshold: DEFAULT_PROBABILITY_THRESHOLD,
            comparing: Role::Initiator,
            buckets: SizeBuckets::default(),
            batch_pairs: super::grouped::DEFAULT_BATCH_PAIRS,
        }
    }

    /// Comparisons for fields known only by name and scoring rule (the caller knows no token
    /// kind): a field with a veto gets the exact-token comparison (`exact` / `different`,
    /// which vetoes), any other the q-gram one (see [`FieldComparison::for_token_kind`]).
    #[must_use]
    pub fn default_comparisons(fields: &[FieldScoring]) -> Comparisons {
        Comparisons {
            fields: fields
                .iter()
                .map(|f| {
                    let kind = if f.veto_below.is_some() {
                        TokenKind::Exact
                    } else {
                        TokenKind::QGram
                    };
                    FieldComparison::for_token_kind(&f.name, kind)
                })
                .collect(),
        }
    }

    /// The `validate.fields` handshake parameter: per field `name:level@min_dice` for each
    /// level, `!` after a vetoing level's bound, levels joined by `,`, fields by `;`.
    pub(crate) fn describe_fields(&self) -> String {
        self.comparisons
            .fields
            .iter()
            .map(|f| {
                let levels = f
                    .levels
                    .iter()
                    .map(|l| {
                        format!(
                            "{}@{}{}",
                            l.label,
                            l.min_dice,
                            if l.veto { "!" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                format!("{}:{levels}", f.field)
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    fn check(&self) -> Result<(), ProtocolError> {
        let local = |what: &'static str, reason: String| ProtocolError::Local { what, reason };
        let fields = &self.comparisons.fields;
        if fields.is_empty() || fields.len() > MAX_FIELDS {
            return Err(local(
                "compared fields",
                format!(
                    "{} fields, expected 1 to {MAX_FIELDS} (validate and fuzzy compare field \
                     tokens)",
                    fields.len()
                ),
            ));
        }
        Comparisons::new(fields.clone())
            .map_err(|e| local("validate comparisons", e.to_string()))?;
        let separators = [':', ';', ',', '@', '!'];
        for field in fields {
            if field.field.contains(separators) {
                return Err(local(
                    "validate comparisons",
                    format!("field name '{}' contains one of : ; , @ !", field.field),
                ));
            }
            if let Some(level) = field.levels.iter().find(|l| l.label.contains(separators)) {
                return Err(local(
                    "validate comparisons",
                    format!(
                        "field '{}': level label '{}' contains one of : ; , @ !",
                        field.field, level.label
                    ),
                ));
            }
        }
        unit_interval("validate.threshold", self.threshold)
    }
}

/// Fuzzy's default MinHash bands (per pair of fields with the default
/// [`BlockingInput::FieldPairs`]; chosen on FEBRL4 and the two-hospitals scenario:
/// papers/benchmarks.md, "Fuzzy: field-pair blocking").
pub const DEFAULT_FUZZY_BANDS: usize = 1;
/// Fuzzy's default minima per band.
pub const DEFAULT_FUZZY_ROWS: usize = 8;
/// Fuzzy's default [`FuzzyConfig::threshold`] (the weighted mean of the fields' Dice).
pub const DEFAULT_FUZZY_THRESHOLD: f64 = 0.6;
/// Fuzzy's default [`FuzzyConfig::common_share`].
pub const DEFAULT_COMMON_SHARE: f64 = 1.0;
/// Fuzzy's default [`FuzzyConfig::max_pairs`].
pub const DEFAULT_FUZZY_MAX_PAIRS: usize = 2;
/// Most [`FuzzyConfig::max_pairs`].
pub const MAX_FUZZY_PAIRS: usize = 256;

/// `fuzzy`: private MinHash blocking through the mutual PSI (the tokens stay local, only keyed
/// band tokens go through the PSI), then the candidate pairs' fields compared through the
/// grouped PSI cardinality, then the one-to-one solver.
#[derive(Clone)]
#[non_exhaustive]
pub struct FuzzyConfig {
    /// Length of the record-level CLKs in bits (a multiple of 8); they are the local input of
    /// the MinHash blocking with [`BlockingInput::ClkBits`].
    pub filter_bits: usize,
    /// The shape of the blocking: `bands` keyed MinHash band tokens per record (per pair of
    /// fields with [`BlockingInput::FieldPairs`]), each joining `bits_per_band` minima (the
    /// name is kept from bit-sampling LSH; here it counts minima). At most
    /// [`MAX_MINHASH_BANDS`](crate::MAX_MINHASH_BANDS) band tokens per record.
    pub lsh: LshParameters,
    /// The set each record's MinHash is taken over (a handshake parameter).
    pub blocking: BlockingInput,
    /// With [`BlockingInput::FieldTokens`]: a field token more than this share of this side's
    /// records hold (a century digit of a date, a frequent bigram) is left out of the
    /// MinHash, as two unrelated records sharing it as a minimum would become a candidate
    /// pair (a handshake parameter; each side counts its own records).
    pub common_share: f64,
    /// The compared fields, in the order of [`PartyRecord::fields`].
    pub fields: Vec<FieldScoring>,
    /// Candidate pairs whose weighted field score is below this (or that a veto field rejects)
    /// are never linked.
    pub threshold: f64,
    /// The side that learns the per-pair shared-token counts and picks the links.
    pub comparing: Role,
    /// Secret key of the MinHash blocking; derive it with [`derive_blocking_key`].
    pub blocking_key: Option<BlockingSecret>,
    /// The size buckets token counts are padded to in the grouped PSI (a handshake
    /// parameter).
    pub buckets: SizeBuckets,
    /// Pairs per batch of the grouped PSI (1 to 65,536; default 2,048): the pairs are
    /// compared a batch at a time, one query and one reply each. A handshake parameter
    /// (`grouped.batch_pairs`, listed only when not the default).
    pub batch_pairs: usize,
    /// Most pairs one of the revealing side's candidate records is compared in (1 to
    /// [`MAX_FUZZY_PAIRS`]): the comparing side keeps the records sharing the most band tokens
    /// with it (a handshake parameter; the revealing side rejects a pair plan over it).
    pub max_pairs: usize,
    /// The exact stage: each record also puts a keyed token of its whole record (all its
    /// field tokens) through the band-token PSI, and the comparing side links two records
    /// whose whole records are equal without comparing them field by field (a handshake
    /// parameter).
    pub exact_stage: bool,
}

impl std::fmt::Debug for FuzzyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuzzyConfig")
            .field("filter_bits", &self.filter_bits)
            .field("lsh", &self.lsh)
            .field("blocking", &self.blocking)
            .field("common_share", &self.common_share)
            .field("fields", &self.fields)
            .field("threshold", &self.threshold)
            .field("comparing", &self.comparing)
            .field("blocking_key", &self.blocking_key.as_ref().map(|_| ".."))
            .field("buckets", &self.buckets)
            .field("batch_pairs", &self.batch_pairs)
            .field("max_pairs", &self.max_pairs)
            .field("exact_stage", &self.exact_stage)
            .finish()
    }
}

impl FuzzyConfig {
    /// Fuzzy comparing `fields`: 1024-bit CLKs, [`DEFAULT_FUZZY_BANDS`] MinHash band of
    /// [`DEFAULT_FUZZY_ROWS`] minima per pair of fields, at most [`DEFAULT_FUZZY_MAX_PAIRS`]
    /// pairs per candidate, the exact stage, threshold [`DEFAULT_FUZZY_THRESHOLD`], the
    /// initiator comparing and no blocking key (set one).
    #[must_use]
    pub fn new(fields: Vec<FieldScoring>) -> Self {
        Self {
            filter_bits: 1024,
            lsh: LshParameters {
                bands: DEFAULT_FUZZY_BANDS,
                bits_per_band: DEFAULT_FUZZY_ROWS,
            },
            blocking: BlockingInput::FieldPairs,
            common_share: DEFAULT_COMMON_SHARE,
            fields,
            threshold: DEFAULT_FUZZY_THRESHOLD,
            comparing: Role::Initiator,
            blocking_key: None,
            buckets: SizeBuckets::default(),
            batch_pairs: super::grouped::DEFAULT_BATCH_PAIRS,
            max_pairs: DEFAULT_FUZZY_MAX_PAIRS,
            exact_stage: true,
        }
    }
}

/// `clk-exchange`: every CLK of the revealing side goes to the comparing side (the anonlink
/// baseline).
///
/// # Security
/// Both parties hold the linkage secret, so the comparing side can decode every CLK it receives
/// (compute the bit pattern of any candidate value and test it). The mode is refused unless
/// [`ClkExchangeConfig::reveal_decodable_encodings`] is set, and it is a handshake parameter,
/// so both sides must opt in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClkExchangeConfig {
    /// Length of the CLKs in bits (a multiple of 8).
    pub filter_bits: usize,
    /// Pairs with a Dice coefficient below this are never linked.
    pub dice_threshold: f64,
    /// The side that receives the CLKs.
    pub comparing: Role,
    /// The explicit opt-in (`[linkage] reveal_decodable_encodings = true`): this side accepts
    /// that the comparing side can decode the revealed CLKs.
    pub reveal_decodable_encodings: bool,
}

impl Default for ClkExchangeConfig {
    fn default() -> Self {
        Self {
            filter_bits: 1024,
            dice_threshold: 0.93,
            comparing: Role::Initiator,
            reveal_decodable_encodings: false,
        }
    }
}

/// Everything both parties must agree on for one run (plus, for `fuzzy`, this side's blocking
/// key): one configuration per mode.
#[derive(Debug, Clone)]
pub enum ModeConfig {
    /// See [`CardinalityConfig`].
    Cardinality(CardinalityConfig),
    /// See [`ExactConfig`].
    Exact(ExactConfig),
    /// See [`ValidateConfig`].
    Validate(ValidateConfig),
    /// See [`FuzzyConfig`].
    Fuzzy(FuzzyConfig),
    /// See [`ClkExchangeConfig`].
    ClkExchange(ClkExchangeConfig),
}

impl ModeConfig {
    /// The defaults of `mode` over the caller's schema: `keys` are the match keys (the first
    /// one for `cardinality` and `validate`, the whole cascade for `exact`, unused otherwise;
    /// none leaves an empty key name, which [`ModeConfig::check`] refuses), `fields` the
    /// compared fields of `validate` and `fuzzy`. The initiator compares, fuzzy has no blocking
    /// key (set one), clk-exchange is at Dice 0.93 and *not* opted in. See
    /// [`CardinalityConfig::new`], [`ExactConfig::new`], [`ValidateConfig::new`] and
    /// [`FuzzyConfig::new`].
    #[must_use]
    pub fn new(mode: Mode, keys: Vec<String>, fields: Vec<FieldScoring>) -> Self {
        let first = keys.first().map_or("", String::as_str);
        match mode {
            Mode::Cardinality => Self::Cardinality(CardinalityConfig::new(first)),
            Mode::Validate => Self::Validate(ValidateConfig::new(first, fields)),
            Mode::Exact => Self::Exact(ExactConfig::new(keys)),
            Mode::Fuzzy => Self::Fuzzy(FuzzyConfig::new(fields)),
            Mode::ClkExchange => Self::ClkExchange(ClkExchangeConfig::default()),
        }
    }

    /// The mode.
    #[must_use]
    pub const fn mode(&self) -> Mode {
        match self {
            Self::Cardinality(_) => Mode::Cardinality,
            Self::Exact(_) => Mode::Exact,
            Self::Validate(_) => Mode::Validate,
            Self::Fuzzy(_) => Mode::Fuzzy,
            Self::ClkExchange(_) => Mode::ClkExchange,
        }
    }

    /// The match keys a record must carry, in [`PartyRecord::keys`] order: one for
    /// `cardinality` and `validate`, the cascade for `exact`, none for `fuzzy` and
    /// `clk-exchange`.
    #[must_use]
    pub fn keys(&self) -> &[String] {
        match self {
            Self::Cardinality(c) => std::slice::from_ref(&c.key),
            Self::Exact(c) => &c.keys,
            Self::Validate(c) => std::slice::from_ref(&c.key),
            Self::Fuzzy(_) | Self::ClkExchange(_) => &[],
        }
    }

    /// The names of the compared fields a record must carry, in [`PartyRecord::fields`]
    /// order (`validate` and `fuzzy`; empty otherwise).
    #[must_use]
    pub fn field_names(&self) -> Vec<&str> {
        match self {
            Self::Validate(c) => c
                .comparisons
                .fields
                .iter()
                .map(|f| f.field.as_str())
                .collect(),
            Self::Fuzzy(c) => c.fields.iter().map(|f| f.name.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The side that compares (`validate`, `fuzzy`, `clk-exchange`).
    #[must_use]
    pub const fn comparing(&self) -> Option<Role> {
        match self {
            Self::Validate(c) => Some(c.comparing),
            Self::Fuzzy(c) => Some(c.comparing),
            Self::ClkExchange(c) => Some(c.comparing),
            Self::Cardinality(_) | Self::Exact(_) => None,
        }
    }

    /// The length of the record-level CLKs in bits (`fuzzy`, `clk-exchange`).
    #[must_use]
    pub const fn filter_bits(&self) -> Option<usize> {
        match self {
            Self::Fuzzy(c) => Some(c.filter_bits),
            Self::ClkExchange(c) => Some(c.filter_bits),
            _ => None,
        }
    }

    /// The parameters the handshake commits to: everything that must be equal on both sides
    /// for this mode (never the blocking key, whose equality the key-check value covers).
    ///
    /// # Errors
    /// The configuration is invalid (see [`ModeConfig::check`]).
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{Mode, ModeConfig};
    /// let keys = vec!["id".to_owned()];
    /// let params = ModeConfig::new(Mode::Exact, keys, Vec::new()).parameters().unwrap();
    /// assert_eq!(params.entries()[0], ("mode.keys".to_owned(), "id".to_owned()));
    /// ```
    pub fn parameters(&self) -> Result<Parameters, ProtocolError> {
        self.check()?;
        let mut entries: Vec<(String, String)> = Vec::new();
        if !self.keys().is_empty() {
            entries.push(("mode.keys".into(), self.keys().join(",")));
        }
        let fields = |fields: &[FieldScoring]| {
            fields
                .iter()
                .map(FieldScoring::describe)
                .collect::<Vec<_>>()
                .join(";")
        };
        match self {
            Self::Cardinality(c) => {
                let bloom = c
                    .bloom_fpr
                    .map_or_else(|| "raw".to_owned(), |r| format!("bloom:{r}"));
                entries.push(("cardinality.set_encoding".into(), bloom));
            }
            Self::Exact(_) => {}
            Self::Validate(c) => {
                entries.push(("validate.comparing".into(), c.comparing.to_string()));
                entries.push(("validate.threshold".into(), c.threshold.to_string()));
                entries.push(("validate.fields".into(), c.describe_fields()));
                entries.push(("grouped.buckets".into(), c.buckets.describe()));
                super::grouped::batch_parameter(c.batch_pairs, &mut entries);
            }
            Self::Fuzzy(c) => {
                entries.push(("link.comparing".into(), c.comparing.to_string()));
                entries.push(("filter_bits".into(), c.filter_bits.to_string()));
                entries.push((
                    "fuzzy.minhash".into(),
                    format!("{}x{}", c.lsh.bands, c.lsh.bits_per_band),
                ));
                entries.push(("fuzzy.blocking".into(), c.blocking.name().to_owned()));
                if c.blocking == BlockingInput::FieldTokens {
                    entries.push(("fuzzy.common_share".into(), c.common_share.to_string()));
                }
                entries.push(("fuzzy.max_pairs".into(), c.max_pairs.to_string()));
                entries.push(("fuzzy.exact_stage".into(), c.exact_stage.to_string()));
                entries.push(("fuzzy.threshold".into(), c.threshold.to_string()));
                entries.push(("fuzzy.fields".into(), fields(&c.fields)));
                entries.push(("grouped.buckets".into(), c.buckets.describe()));
                super::grouped::batch_parameter(c.batch_pairs, &mut entries);
            }
            Self::ClkExchange(c) => {
                entries.push(("link.comparing".into(), c.comparing.to_string()));
                entries.push(("filter_bits".into(), c.filter_bits.to_string()));
                entries.push(("link.dice_threshold".into(), c.dice_threshold.to_string()));
                entries.push((
                    "clk_exchange.reveal_decodable_encodings".into(),
                    c.reveal_decodable_encodings.to_string(),
                ));
            }
        }
        Parameters::new(entries)
    }

    /// Checks the configuration on its own.
    ///
    /// # Errors
    /// [`ProtocolError::Local`] naming the setting: no or too many match keys, an invalid key
    /// name, no or too many compared fields, an invalid field scoring, a filter length that is
    /// not whole bytes, a threshold outside `[0, 1]`, a fuzzy configuration without a blocking
    /// key, and `clk-exchange` without `[linkage] reveal_decodable_encodings = true`.
    pub fn check(&self) -> Result<(), ProtocolError> {
        let local = |what: &'static str, reason: String| ProtocolError::Local { what, reason };
        let keys = self.keys();
        if matches!(self, Self::Exact(_)) && (keys.is_empty() || keys.len() > MAX_MATCH_KEYS) {
            return Err(local(
                "match keys",
                format!("{} keys, expected 1 to {MAX_MATCH_KEYS}", keys.len()),
            ));
        }
        for key in keys {
            blindlink_psi::MatchKeyName::new(key)
                .map_err(|e| local("match key", format!("'{key}': {e}")))?;
        }
        let bits_ok = |bits: usize| bits > 0 && bits.is_multiple_of(8) && bits <= 1 << 16;
        if let Some(bits) = self.filter_bits()
            && !bits_ok(bits)
        {
            return Err(local(
                "filter_bits",
                format!("{bits} is not a positive multiple of 8 up to 65536"),
            ));
        }
        if let Self::Fuzzy(c) = self {
            let fields = &c.fields;
            if fields.is_empty() || fields.len() > MAX_FIELDS {
                return Err(local(
                    "compared fields",
                    format!(
                        "{} fields, expected 1 to {MAX_FIELDS} (validate and fuzzy compare \
                         field tokens)",
                        fields.len()
                    ),
                ));
            }
            for (i, field) in fields.iter().enumerate() {
                field.check()?;
                if fields[..i].iter().any(|f| f.name == field.name) {
                    return Err(local(
                        "compared fields",
                        format!("field '{}' is listed twice", field.name),
                    ));
                }
            }
        }
        match self {
            Self::Cardinality(c) => {
                if let Some(rate) = c.bloom_fpr {
                    blindlink_psi::FalsePositiveRate::new(rate)
                        .map_err(|e| local("cardinality.bloom_fpr", e.to_string()))?;
                }
            }
            Self::Exact(_) => {}
            Self::Validate(c) => {
                c.check()?;
                super::grouped::check_batch_pairs(c.batch_pairs)?;
            }
            Self::Fuzzy(c) => {
                super::grouped::check_batch_pairs(c.batch_pairs)?;
                unit_interval("fuzzy.threshold", c.threshold)?;
                unit_interval("fuzzy.common_share", c.common_share)?;
                let shape = blindlink_matching::MinHashParameters {
                    bands: c.lsh.bands,
                    rows: c.lsh.bits_per_band,
                };
                blindlink_matching::MinHasher::new(&BlockingSecret::new([0; 32]), shape)
                    .map_err(|e| local("fuzzy.minhash", e.to_string()))?;
                let tokens = c.blocking.tokens_per_record(c.lsh.bands, c.fields.len());
                if tokens > blindlink_matching::MAX_MINHASH_BANDS {
                    return Err(local(
                        "fuzzy.minhash",
                        format!(
                            "{} blocking over {} fields with {} bands per field pair makes \
                             {tokens} band tokens per record, over the limit of {}",
                            c.blocking.name(),
                            c.fields.len(),
                            c.lsh.bands,
                            blindlink_matching::MAX_MINHASH_BANDS
                        ),
                    ));
                }
                if !(1..=MAX_FUZZY_PAIRS).contains(&c.max_pairs) {
                    return Err(local(
                        "fuzzy.max_pairs",
                        format!("{} is outside 1 to {MAX_FUZZY_PAIRS}", c.max_pairs),
                    ));
                }
                if c.blocking_key.is_none() {
                    return Err(local(
                        "fuzzy configuration",
                        "no blocking key (derive one from the linkage secret)".into(),
                    ));
                }
            }
            Self::ClkExchange(c) => {
                unit_interval("link.dice_threshold", c.dice_threshold)?;
                if !c.reveal_decodable_encodings {
                    return Err(local(
                        "clk-exchange configuration",
                        "[linkage] reveal_decodable_encodings is not set: clk-exchange sends every \
                         CLK to the comparing side, which holds the linkage key and can decode \
                         them; set [linkage] reveal_decodable_encodings = true in both party \
                         configs to accept that"
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn unit_interval(what: &'static str, value: f64) -> Result<(), ProtocolError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ProtocolError::Local {
            what,
            reason: format!("{value} is outside [0, 1]"),
        })
    }
}

/// The MinHash blocking key both parties derive from their shared linkage secret:
/// HMAC-SHA-256 under the secret of the tag `blindlink/v1/protocol/lsh-blocking-key`.
///
/// # Security
/// The secret bytes are used only as an HMAC key; the result is as secret as the linkage key.
#[must_use]
pub fn derive_blocking_key(linkage_secret: &[u8]) -> BlockingSecret {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(linkage_secret)
        .unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
    mac.update(b"blindlink/v1/protocol/lsh-blocking-key");
    let mut key = [0u8; 32];
    key.copy_from_slice(&mac.finalize().into_bytes());
    let blocking = BlockingSecret::new(key);
    zeroize::Zeroize::zeroize(&mut key);
    blocking
}

/// Checks that the data fits the configuration, naming the first record that does not.
pub(crate) fn check_data(config: &ModeConfig, data: &PartyData) -> Result<(), ProtocolError> {
    if data.len() > MAX_RECORDS {
        return Err(ProtocolError::Local {
            what: "party data",
            reason: format!("{} records, over the limit of {MAX_RECORDS}", data.len()),
        });
    }
    let bad = |i: usize, reason: String| ProtocolError::Local {
        what: "party data",
        reason: format!("record {} ('{}'): {reason}", i + 1, data.id(i)),
    };
    let keys = config.keys().len();
    let fields = config.field_names();
    let ragged = data.ragged();
    if keys > 0 && !data.is_empty() {
        let (i, count) = if data.key_count() == keys {
            ragged.keys.unwrap_or((0, keys))
        } else {
            (0, data.key_count())
        };
        if count != keys {
            return Err(bad(i, format!("{count} match keys, expected {keys}")));
        }
    }
    if !fields.is_empty() && !data.is_empty() {
        let (i, count) = if data.field_count() == fields.len() {
            ragged.fields.unwrap_or((0, fields.len()))
        } else {
            (0, data.field_count())
        };
        if count != fields.len() {
            return Err(bad(
                i,
                format!("{count} compared fields, expected {}", fields.len()),
            ));
        }
    }
    for i in 0..data.len() {
        if let Some(bits) = config.filter_bits()
            && let Some(clk) = data.clk(i)
            && clk.len() != bits / 8
        {
            return Err(bad(
                i,
                format!("clk of {} bytes, expected {}", clk.len(), bits / 8),
            ));
        }
        // Kept values are checked as they are tokenised (`FieldReader::tokens`).
        for (f, name) in fields
            .iter()
            .enumerate()
            .filter(|_| !data.has_field_values())
        {
            let mut count = 0;
            for token in data.field(i, f) {
                count += 1;
                if token.len() > MAX_TOKEN_BYTES {
                    return Err(bad(
                        i,
                        format!(
                            "a token of field '{name}' has {} bytes, over the limit of \
                             {MAX_TOKEN_BYTES}",
                            token.len()
                        ),
                    ));
                }
            }
            if count > MAX_FIELD_TOKENS {
                return Err(bad(
                    i,
                    format!(
                        "field '{name}' has {count} tokens, over the limit of {MAX_FIELD_TOKENS}"
                    ),
                ));
            }
        }
    }
    Ok(())
}
