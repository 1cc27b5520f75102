//! The encodings the attacks are run against: a small description ([`EncodingConfig`]) turned
//! into a native blindlink schema and run over a [`Table`] with `blindlink-encoding`'s
//! [`ClkEncoder`], exactly as a party would encode its file.

use blindlink_encoding::normalise::Pipeline;
use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
use blindlink_synth::Locale;

use crate::{LeakageError, Table, quasi_identifiers};

/// How the fields share the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterLayout {
    /// One filter for the whole record (Schnell's CLK) of `bits` bits.
    Clk,
    /// One filter of `bits` bits per field, concatenated (the former `validate` filters).
    PerField,
}

/// The hardening applied after the filter is built (`blindlink-encoding`'s `[[harden]]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hardening {
    /// None.
    None,
    /// Append the complement and permute (Berger & Schnell).
    Balance,
    /// XOR-fold once (Schnell et al. 2016).
    XorFold,
    /// Rule 90 (Schnell & Borgs 2018).
    Rule90,
    /// Keyed permutation of the bit positions.
    Permute,
    /// BLIP randomised response with this ε.
    Blip(f64),
    /// Record salt: the year of birth mixed into every token hash (Chen et al. 2022's
    /// salt-YOB).
    SaltYear,
}

impl Hardening {
    /// The name used in `leakage.csv`.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Balance => "balance".into(),
            Self::XorFold => "xor-fold".into(),
            Self::Rule90 => "rule90".into(),
            Self::Permute => "permute".into(),
            Self::Blip(e) => format!("blip-eps{e}"),
            Self::SaltYear => "salt-yob".into(),
        }
    }

    fn toml(self) -> String {
        match self {
            Self::None => String::new(),
            Self::Balance => "[[harden]]\nstep = \"balance\"\n".into(),
            Self::XorFold => "[[harden]]\nstep = \"xor-fold\"\n".into(),
            Self::Rule90 => "[[harden]]\nstep = \"rule90\"\n".into(),
            Self::Permute => "[[harden]]\nstep = \"permute\"\n".into(),
            Self::Blip(e) => format!("[[harden]]\nstep = \"blip\"\nepsilon = {e:?}\n"),
            Self::SaltYear => "[[harden]]\nstep = \"salt\"\ncolumn = \"birth_year\"\n".into(),
        }
    }
}

/// An encoding of some quasi-identifiers of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncodingConfig {
    /// Layout.
    pub layout: FilterLayout,
    /// Filter length: of the CLK, or of each field's filter.
    pub bits: usize,
    /// Bits set per token (k).
    pub bits_per_token: u32,
    /// q of the q-grams (names, date of birth and address; sex is one exact token).
    pub q: usize,
    /// Which quasi-identifiers, as indices into [`quasi_identifiers`].
    pub fields: Vec<usize>,
    /// Hardening.
    pub hardening: Hardening,
}

impl EncodingConfig {
    /// A CLK of all five quasi-identifiers with the parameters of the graph-matching
    /// literature (l = 1024, k = 10, q = 2).
    #[must_use]
    pub fn clk() -> Self {
        Self {
            layout: FilterLayout::Clk,
            bits: 1024,
            bits_per_token: 10,
            q: 2,
            fields: (0..5).collect(),
            hardening: Hardening::None,
        }
    }

    /// The same with another hardening.
    #[must_use]
    pub fn hardened(mut self, hardening: Hardening) -> Self {
        self.hardening = hardening;
        self
    }

    /// A short name for tables: `clk-l1024-k10-q2-5f`.
    #[must_use]
    pub fn label(&self) -> String {
        let layout = match self.layout {
            FilterLayout::Clk => "clk",
            FilterLayout::PerField => "per-field",
        };
        format!(
            "{layout}-l{}-k{}-q{}-{}f",
            self.bits,
            self.bits_per_token,
            self.q,
            self.fields.len()
        )
    }

    /// The native schema (TOML) of this encoding for `locale`'s columns.
    #[must_use]
    pub fn schema_toml(&self, locale: Locale) -> String {
        let names = quasi_identifiers(locale);
        let total = match self.layout {
            FilterLayout::Clk => self.bits,
            FilterLayout::PerField => self.bits * self.fields.len(),
        };
        let layout = match self.layout {
            FilterLayout::Clk => "clk",
            FilterLayout::PerField => "per-field",
        };
        let mut s = format!("version = 1\n[filter]\nbits = {total}\nlayout = \"{layout}\"\n");
        for &f in &self.fields {
            let column = names[f];
            let (normalise, tokens) = field_rules(locale, column, self.q);
            s.push_str(&format!(
                "[[field]]\ncolumn = \"{column}\"\nnormalise = {normalise}\ntokens = {tokens}\nbits_per_token = {}\n",
                self.bits_per_token
            ));
            if self.layout == FilterLayout::PerField {
                s.push_str(&format!("bits = {}\n", self.bits));
            }
        }
        s.push_str(&self.hardening.toml());
        s
    }

    /// The parsed schema document.
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] when the schema is refused (e.g. zero bits).
    pub fn document(&self, locale: Locale) -> Result<SchemaDocument, LeakageError> {
        Ok(SchemaDocument::parse(&self.schema_toml(locale))?)
    }

    /// The values `ClkEncoder::encode` takes for row `index` of `table`: the configured
    /// fields, then the year of birth for a salted encoding.
    #[must_use]
    pub fn values<'a>(&self, table: &'a Table, index: usize, year: &'a str) -> Vec<&'a str> {
        let mut v: Vec<&str> = self
            .fields
            .iter()
            .map(|&f| table.rows[index][f].as_str())
            .collect();
        if self.hardening == Hardening::SaltYear {
            v.push(year);
        }
        v
    }

    /// Encodes every row of `table` as its party would (record index = row number).
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] when the encoder refuses the schema or a value.
    pub fn encode(
        &self,
        locale: Locale,
        table: &Table,
        encoder: &ClkEncoder,
    ) -> Result<Vec<Vec<u8>>, LeakageError> {
        let years = birth_years(locale, table);
        let mut scratch = EncoderScratch::default();
        (0..table.len())
            .map(|i| {
                let mut out = vec![0u8; encoder.bytes_per_clk()];
                encoder.encode(
                    &self.values(table, i, &years[i]),
                    i as u64,
                    &mut scratch,
                    &mut out,
                )?;
                Ok(out)
            })
            .collect()
    }

    /// An encoder for this configuration under `secret` (BLIP seeded fresh from the OS).
    ///
    /// # Errors
    /// [`LeakageError::Encoding`] when the schema is refused.
    pub fn encoder(
        &self,
        locale: Locale,
        secret: &LinkageSecret,
    ) -> Result<ClkEncoder, LeakageError> {
        Ok(ClkEncoder::new(&self.document(locale)?, secret)?)
    }
}

/// Normalisation and tokens of a quasi-identifier.
fn field_rules(locale: Locale, column: &str, q: usize) -> (&'static str, String) {
    let ngram = format!("{{ kind = \"ngram\", n = {q} }}");
    let date = match locale {
        Locale::Japanese => "[\"nfkc\", \"date\"]",
        Locale::Latin => "[\"nfkc\", \"date-dmy\"]",
    };
    match (locale, column) {
        (_, "sex") => ("[\"sex\"]", "{ kind = \"exact\" }".into()),
        (_, "date_of_birth") => (date, ngram),
        (Locale::Japanese, "name_kana") => (
            "[\"nfkc\", \"halfwidth-kana\", \"katakana\", \"long-vowel-fold\", \"strip-whitespace\"]",
            ngram,
        ),
        (Locale::Japanese, "address") => (
            "[\"nfkc\", \"itaiji\", \"drop-postcode\", \"drop-prefecture\", \"jp-address\", \"strip-whitespace\"]",
            ngram,
        ),
        (Locale::Japanese, _) => ("[\"nfkc\", \"itaiji\", \"strip-whitespace\"]", ngram),
        (Locale::Latin, _) => ("[\"nfkc\", \"casefold\", \"whitespace\"]", ngram),
    }
}

/// The year of birth of every row (`""` when the date does not parse), the salt of
/// [`Hardening::SaltYear`].
#[must_use]
pub fn birth_years(locale: Locale, table: &Table) -> Vec<String> {
    let steps: &[&str] = match locale {
        Locale::Japanese => &["nfkc", "date"],
        Locale::Latin => &["nfkc", "date-dmy"],
    };
    let column = table.column("date_of_birth");
    let pipeline = Pipeline::parse(steps).ok();
    (0..table.len())
        .map(|i| match (column, &pipeline) {
            (Some(c), Some(p)) => p
                .apply(&table.rows[i][c])
                .ok()
                .map(|d| d.chars().take(4).collect())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .collect()
}

/// The normalised value of field `field` (index into [`quasi_identifiers`]) of every row, as
/// the encoder sees it (`None` when normalisation rejects it): the truth a value-level attack
/// is scored against.
#[must_use]
pub fn normalised_values(
    locale: Locale,
    table: &Table,
    field: usize,
    q: usize,
) -> Vec<Option<String>> {
    let names = quasi_identifiers(locale);
    let (normalise, _) = field_rules(locale, names[field], q);
    let steps: Vec<String> = normalise
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|s| s.trim_matches('"').to_owned())
        .collect();
    let pipeline = Pipeline::parse(&steps).ok();
    table
        .rows
        .iter()
        .map(|r| pipeline.as_ref().and_then(|p| p.apply(&r[field]).ok()))
        .collect()
}
