//! The entry point: a [`Schema`] in either dialect and the [`ClkEncoder`] built from it.

use sha2::{Digest as _, Sha256};

use crate::clkhash::{ClkhashEncoder, ClkhashSchema, ClkhashScratch};
use crate::native::{NativeEncoder, NativeSchema, NativeScratch};
use crate::{EncodingError, LinkageSecret};

/// A linkage schema: blindlink's native TOML or clkhash's v3 JSON.
#[derive(Debug, Clone)]
pub enum Schema {
    /// blindlink's native TOML schema.
    Native(NativeSchema),
    /// clkhash's linkage schema v3.
    Clkhash(ClkhashSchema),
}

/// A parsed schema with the digest of the document it came from.
#[derive(Debug, Clone)]
pub struct SchemaDocument {
    /// The schema.
    pub schema: Schema,
    /// SHA-256 of the document's bytes, written into binary CLK files and handshakes.
    pub digest: [u8; 32],
}

impl SchemaDocument {
    /// Parses a schema, detecting the dialect from the content: a document whose first
    /// non-blank character is `{` is clkhash JSON, anything else native TOML.
    ///
    /// # Errors
    /// [`EncodingError::Schema`] with the location and reason of the first problem.
    ///
    /// # Example
    /// ```
    /// use blindlink_encoding::{Schema, SchemaDocument};
    /// let doc = SchemaDocument::parse(r#"
    ///     version = 1
    ///     [filter]
    ///     bits = 256
    ///     [[field]]
    ///     column = "name"
    ///     tokens = { kind = "ngram", n = 2 }
    ///     bits_per_token = 10
    /// "#)?;
    /// assert!(matches!(doc.schema, Schema::Native(_)));
    /// assert_eq!(doc.schema.columns(), ["name"]);
    /// # Ok::<(), blindlink_encoding::EncodingError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, EncodingError> {
        let schema = if text.trim_start().starts_with('{') {
            Schema::Clkhash(ClkhashSchema::parse(text)?)
        } else {
            Schema::Native(NativeSchema::parse(text)?)
        };
        Ok(Self {
            schema,
            digest: Sha256::digest(text.as_bytes()).into(),
        })
    }
}

impl Schema {
    /// The CSV columns a record is made of, in the order [`ClkEncoder::encode`] takes them.
    /// For clkhash schemas these are all feature identifiers, ignored ones included, and the
    /// CSV header must be exactly this list (as clkhash requires).
    #[must_use]
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Self::Native(s) => s.columns(),
            Self::Clkhash(s) => s.identifiers().collect(),
        }
    }

    /// Names of the encoded fields, in the order of [`ClkEncoder::encode`]'s field popcounts.
    #[must_use]
    pub fn field_names(&self) -> Vec<&str> {
        match self {
            Self::Native(s) => s.fields.iter().map(|f| f.column.as_str()).collect(),
            Self::Clkhash(s) => s.hashed_identifiers().collect(),
        }
    }

    /// CLK length in bits.
    #[must_use]
    pub fn filter_bits(&self) -> usize {
        match self {
            Self::Native(s) => s.output_bits(),
            Self::Clkhash(s) => s.filter_bits(),
        }
    }

    /// Things the schema does that the user may not expect.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Self::Native(_) => Vec::new(),
            Self::Clkhash(s) => s.warnings().to_vec(),
        }
    }

    /// Maps a CSV header to the column index of each value [`ClkEncoder::encode`] needs.
    ///
    /// # Errors
    /// [`EncodingError::Header`] naming the missing column, or for clkhash schemas the first
    /// position where the header differs from the feature identifiers.
    pub fn bind_header(&self, header: &[&str]) -> Result<Vec<usize>, EncodingError> {
        match self {
            Self::Clkhash(s) => {
                let ids: Vec<&str> = s.identifiers().collect();
                if header.len() != ids.len() {
                    return Err(EncodingError::Header(format!(
                        "{} columns when the clkhash schema has {} features ({})",
                        header.len(),
                        ids.len(),
                        ids.join(", ")
                    )));
                }
                for (i, (h, id)) in header.iter().zip(&ids).enumerate() {
                    if h != id {
                        return Err(EncodingError::Header(format!(
                            "column {} is '{h}' where the clkhash schema expects '{id}'",
                            i + 1
                        )));
                    }
                }
                Ok((0..ids.len()).collect())
            }
            Self::Native(s) => s
                .columns()
                .iter()
                .map(|c| find_column(header, c, "the schema needs it"))
                .collect(),
        }
    }
}

/// The index of `column` in a CSV `header` that must hold it exactly once: the one column
/// lookup of [`Schema::bind_header`] and of the party layer's column binding. `why` says what
/// needs the column and ends the message of a missing one.
///
/// # Errors
/// [`EncodingError::Header`]: `no column '<column>' (<why>)` or
/// `column '<column>' appears more than once`.
///
/// # Example
/// ```
/// use blindlink_encoding::find_column;
/// assert_eq!(find_column(&["id", "name"], "name", "x").unwrap(), 1);
/// let missing = find_column(&["id"], "name", "the schema needs it").unwrap_err();
/// assert_eq!(missing.to_string(), "header: no column 'name' (the schema needs it)");
/// let twice = find_column(&["name", "name"], "name", "x").unwrap_err();
/// assert_eq!(twice.to_string(), "header: column 'name' appears more than once");
/// ```
pub fn find_column(header: &[&str], column: &str, why: &str) -> Result<usize, EncodingError> {
    let mut hits = header
        .iter()
        .enumerate()
        .filter(|(_, h)| **h == column)
        .map(|(i, _)| i);
    match (hits.next(), hits.next()) {
        (Some(i), None) => Ok(i),
        (None, _) => Err(EncodingError::Header(format!(
            "no column '{column}' ({why})"
        ))),
        (Some(_), Some(_)) => Err(EncodingError::Header(format!(
            "column '{column}' appears more than once"
        ))),
    }
}

#[derive(Debug, Clone)]
enum EncoderKind {
    Native(NativeEncoder),
    Clkhash(ClkhashEncoder),
}

/// Encodes records into CLKs. Build once, share across threads (`&self` is all `encode`
/// needs), give each thread its own [`EncoderScratch`].
#[derive(Debug, Clone)]
pub struct ClkEncoder {
    kind: EncoderKind,
    filter_bits: usize,
    digest: [u8; 32],
}

/// Reusable per-thread buffers and token caches of a [`ClkEncoder`].
#[derive(Debug, Default)]
pub struct EncoderScratch {
    native: NativeScratch,
    clkhash: ClkhashScratch,
}

impl ClkEncoder {
    /// Derives every key the schema needs from `secret`.
    ///
    /// # Errors
    /// [`EncodingError::Schema`] when the schema's key derivation cannot be satisfied.
    ///
    /// # Example
    /// ```
    /// use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
    /// let doc = SchemaDocument::parse(r#"
    ///     version = 1
    ///     [filter]
    ///     bits = 256
    ///     [[field]]
    ///     column = "name"
    ///     normalise = ["nfkc", "itaiji"]
    ///     tokens = { kind = "ngram", n = 2 }
    ///     bits_per_token = 10
    /// "#)?;
    /// let encoder = ClkEncoder::new(&doc, &LinkageSecret::from_bytes(b"k".to_vec())?)?;
    /// let mut scratch = EncoderScratch::default();
    /// let (mut a, mut b) = (vec![0; 32], vec![0; 32]);
    /// encoder.encode(&["髙橋"], 0, &mut scratch, &mut a)?;
    /// encoder.encode(&["高橋"], 1, &mut scratch, &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), blindlink_encoding::EncodingError>(())
    /// ```
    pub fn new(document: &SchemaDocument, secret: &LinkageSecret) -> Result<Self, EncodingError> {
        let kind = match &document.schema {
            Schema::Native(s) => EncoderKind::Native(NativeEncoder::new(s, secret)?),
            Schema::Clkhash(s) => EncoderKind::Clkhash(ClkhashEncoder::new(s, secret)?),
        };
        Ok(Self {
            kind,
            filter_bits: document.schema.filter_bits(),
            digest: document.digest,
        })
    }

    /// Replaces the seed of BLIP's flips (fresh from the OS RNG by default): the output of the
    /// caller's CSPRNG, or a fixed value where a test needs reproducible flips. Changes nothing
    /// for schemas without BLIP (clkhash schemas have none).
    ///
    /// # Security
    /// Never derive the seed from the linkage secret or anything else the peer knows: the peer
    /// would regenerate the flips and XOR them out. Draw a new one per encoding run.
    #[must_use]
    pub fn with_blip_seed(mut self, seed: [u8; 32]) -> Self {
        if let EncoderKind::Native(e) = self.kind {
            self.kind = EncoderKind::Native(e.with_blip_seed(seed));
        }
        self
    }

    /// CLK length in bits.
    #[must_use]
    pub fn filter_bits(&self) -> usize {
        self.filter_bits
    }

    /// Bytes per CLK.
    #[must_use]
    pub fn bytes_per_clk(&self) -> usize {
        self.filter_bits.div_ceil(8)
    }

    /// Digest of the schema document.
    #[must_use]
    pub fn schema_digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Encodes one record into `out` (`bytes_per_clk()` bytes). `values` follow
    /// [`Schema::columns`]; `record_index` picks the record's stream of BLIP flips under this
    /// encoder's seed (so a run is deterministic whatever the thread count, and another
    /// encoder, the peer's included, draws other flips).
    ///
    /// # Errors
    /// [`EncodingError::InvalidValue`] naming the field and the reason, or
    /// [`EncodingError::RecordLength`].
    pub fn encode(
        &self,
        values: &[&str],
        record_index: u64,
        scratch: &mut EncoderScratch,
        out: &mut [u8],
    ) -> Result<(), EncodingError> {
        match &self.kind {
            EncoderKind::Native(e) => {
                e.encode(values, record_index, &mut scratch.native, out, None)
            }
            EncoderKind::Clkhash(e) => e.encode(values, &mut scratch.clkhash, out, None),
        }
    }

    /// Like [`ClkEncoder::encode`], also filling `field_popcounts` with the bits each encoded
    /// field sets (one entry per [`Schema::field_names`]).
    ///
    /// # Errors
    /// As [`ClkEncoder::encode`].
    pub fn encode_with_field_popcounts(
        &self,
        values: &[&str],
        record_index: u64,
        scratch: &mut EncoderScratch,
        out: &mut [u8],
        field_popcounts: &mut Vec<u32>,
    ) -> Result<(), EncodingError> {
        match &self.kind {
            EncoderKind::Native(e) => e.encode(
                values,
                record_index,
                &mut scratch.native,
                out,
                Some(field_popcounts),
            ),
            EncoderKind::Clkhash(e) => {
                e.encode(values, &mut scratch.clkhash, out, Some(field_popcounts))
            }
        }
    }
}
