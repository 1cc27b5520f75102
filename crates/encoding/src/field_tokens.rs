//! Field tokens: for a native schema, each field's tokens as a multiset, with the
//! normalisation and tokenisation the encoder applies before it hashes (no Bloom filter, no
//! hardening).
//!
//! They are the input of the protocol's grouped PSI cardinality (`validate` and `fuzzy`
//! compare a pair's fields by the number of tokens they share, never by a filter sent to the
//! peer). The tokens come from the same [`NativeField`] steps the encoder goes through
//! (`NativeField::text`, then `NativeField::tokens`), so they cannot drift apart: a
//! value's tokens are exactly what its Bloom filter bits are hashed from.
//!
//! # Plain tokens or keyed digests
//! A token is handed out as `HMAC-SHA3-256(token key, token)` truncated to
//! [`FIELD_TOKEN_BYTES`] bytes, under a per-field key
//! `HMAC-SHA3-256(secret, "blindlink/v1/field-token" ‖ 0 ‖ column)` that is separate from the
//! key the Bloom filter positions come from. Either choice would be equally safe on the wire:
//! the PSI hashes each token to the group bound to the session and the pair and blinds it
//! with a fresh scalar, and the peer holds the linkage secret anyway, so keying adds nothing
//! against the peer. It is chosen for what stays *inside* the party: the tokens live in
//! memory for the whole session (in the protocol's `PartyRecord`, which derives `Debug`, in
//! panic messages, core dumps, fuzz corpora), and a keyed digest there is not a name or a date
//! of birth in clear, to anyone who does not hold the secret. It also makes every token the
//! same length and separates fields (`"1 1"` of a date and of a postcode differ). The cost is
//! one HMAC per distinct token, memoised per thread. 128 bits leave collisions negligible
//! (two tokens of one pair's field colliding: about 2⁻¹²⁸ per pair of tokens).
//!
//! Salting (a `salt` hardening step) is not applied: it varies the Bloom filter *positions*
//! per record, which have no counterpart here; the PSI's labels already make a token
//! meaningful only within its pair and field.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use hmac::{KeyInit, Mac, SimpleHmac};
use sha3::Sha3_256;

use crate::cache::TokenHasher as FxHasher;
use crate::keyed::DerivedKey;
use crate::native::{NativeField, NativeSchema};
use crate::{EncodingError, LinkageSecret, Schema, SchemaDocument};

/// The tokens of one field of one record, as a multiset (repeats kept, in the order the
/// tokeniser emits them); empty when the value is missing.
pub type FieldTokens = Vec<Vec<u8>>;

/// Bytes of each token [`FieldTokenizer::tokens`] gives.
pub const FIELD_TOKEN_BYTES: usize = 16;

/// Distinct tokens a field's digest cache remembers before it is emptied.
const MAX_CACHED_TOKENS: usize = 1 << 16;

/// Turns a record's column values into each field's [`FieldTokens`], for a native schema.
/// Build once, share across threads (`&self`); give each thread a [`FieldTokenScratch`].
#[derive(Clone)]
pub struct FieldTokenizer {
    fields: Vec<NativeField>,
    /// One keyed HMAC state per field.
    keys: Vec<SimpleHmac<Sha3_256>>,
    /// Values [`FieldTokenizer::tokens`] takes: the fields, then the salt column if any.
    columns: usize,
}

impl std::fmt::Debug for FieldTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldTokenizer")
            .field("fields", &self.field_names())
            .finish_non_exhaustive()
    }
}

/// A field's plain token → keyed digest memo.
type DigestCache = HashMap<Box<[u8]>, [u8; FIELD_TOKEN_BYTES], BuildHasherDefault<FxHasher>>;

/// Per-thread buffers and token-digest caches of a [`FieldTokenizer`].
#[derive(Default)]
pub struct FieldTokenScratch {
    normalised: String,
    normalise_scratch: String,
    chars: Vec<char>,
    token: String,
    digests: Vec<DigestCache>,
}

impl std::fmt::Debug for FieldTokenScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldTokenScratch")
    }
}

impl FieldTokenizer {
    /// Derives the per-field token keys for `document`'s fields.
    ///
    /// # Errors
    /// [`EncodingError::Schema`] when the document is a clkhash schema (its features have no
    /// native normalisation pipeline to take tokens from).
    ///
    /// # Example
    /// ```
    /// use blindlink_encoding::{FieldTokenScratch, FieldTokenizer, LinkageSecret, SchemaDocument};
    /// let doc = SchemaDocument::parse(r#"
    ///     version = 1
    ///     [filter]
    ///     bits = 256
    ///     [[field]]
    ///     column = "name"
    ///     normalise = ["nfkc", "itaiji"]
    ///     tokens = { kind = "ngram", n = 2 }
    ///     bits_per_token = 10
    ///     [[field]]
    ///     column = "sex"
    ///     normalise = ["sex"]
    ///     tokens = { kind = "exact" }
    ///     bits_per_token = 10
    /// "#)?;
    /// let tokenizer = FieldTokenizer::new(&doc, &LinkageSecret::from_bytes(b"k".to_vec())?)?;
    /// let mut scratch = FieldTokenScratch::default();
    /// let (mut a, mut b) = (Vec::new(), Vec::new());
    /// tokenizer.tokens(&["髙橋", "F"], &mut scratch, &mut a)?;
    /// tokenizer.tokens(&["高橋", ""], &mut scratch, &mut b)?;
    /// assert_eq!(a[0], b[0]); // " 高", "高橋", "橋 ": the same three bigrams
    /// assert_eq!((a[0].len(), a[1].len(), b[1].len()), (3, 1, 0)); // a missing sex: no token
    /// # Ok::<(), blindlink_encoding::EncodingError>(())
    /// ```
    pub fn new(document: &SchemaDocument, secret: &LinkageSecret) -> Result<Self, EncodingError> {
        match &document.schema {
            Schema::Native(schema) => Ok(Self::from_native(schema, secret)),
            Schema::Clkhash(_) => Err(EncodingError::schema(
                "(document)",
                "field tokens need a native schema, and this is a clkhash schema",
            )),
        }
    }

    /// As [`FieldTokenizer::new`], from a parsed native schema.
    ///
    /// # Security
    /// The token keys are derived from `secret` for this purpose only and never printed.
    #[must_use]
    pub fn from_native(schema: &NativeSchema, secret: &LinkageSecret) -> Self {
        let keys = schema
            .fields
            .iter()
            .map(|f| {
                let key = DerivedKey::derive(secret, "field-token", f.column.as_bytes());
                <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(key.bytes())
                    .unwrap_or_else(|_| unreachable_hmac())
            })
            .collect();
        Self {
            fields: schema.fields.clone(),
            keys,
            columns: schema.columns().len(),
        }
    }

    /// The fields, in the order of the `out` entries of [`FieldTokenizer::tokens`].
    #[must_use]
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.column.as_str()).collect()
    }

    /// Fills `out` with one [`FieldTokens`] per field: `values` follow
    /// [`Schema::columns`] (as for [`ClkEncoder::encode`](crate::ClkEncoder::encode), the salt
    /// column's value last, if the schema salts; it is not used).
    ///
    /// # Errors
    /// [`EncodingError::RecordLength`] for the wrong number of values,
    /// [`EncodingError::InvalidValue`] naming the column where the encoder would reject the
    /// value too (a `missing = "reject"` field, a value normalisation rejects).
    pub fn tokens(
        &self,
        values: &[&str],
        scratch: &mut FieldTokenScratch,
        out: &mut Vec<FieldTokens>,
    ) -> Result<(), EncodingError> {
        if scratch.digests.len() != self.fields.len() {
            scratch.digests = self.fields.iter().map(|_| HashMap::default()).collect();
        }
        out.clear();
        out.resize_with(self.fields.len(), Vec::new);
        let FieldTokenScratch {
            normalised,
            normalise_scratch,
            chars,
            token,
            digests,
        } = scratch;
        self.plain_tokens(
            values,
            normalised,
            normalise_scratch,
            chars,
            token,
            |field, t| out[field].push(self.digest(&mut digests[field], field, t).to_vec()),
        )
    }

    /// Emits `(field index, normalised text)` for every field, in field order: the text
    /// [`FieldTokenizer::text_tokens`] turns into exactly the tokens
    /// [`FieldTokenizer::tokens`] gives for `values` (an empty text has none). A value is
    /// checked as [`FieldTokenizer::tokens`] checks it (its plain tokens are made, not
    /// hashed), so a record this accepts is one `tokens` accepts, with the same first error
    /// otherwise. A party that compares only some records' fields keeps these texts (a
    /// name's ~10 bytes, not its ~30 tokens of 16) and tokenises a record when it is compared.
    ///
    /// # Errors
    /// As [`FieldTokenizer::tokens`].
    ///
    /// # Security
    /// The texts are the normalised values in the clear, unlike the keyed tokens: whoever
    /// keeps them holds personal data (as the input it read them from).
    pub fn texts(
        &self,
        values: &[&str],
        scratch: &mut FieldTokenScratch,
        mut emit: impl FnMut(usize, &str),
    ) -> Result<(), EncodingError> {
        self.check_length(values)?;
        let FieldTokenScratch {
            normalised,
            normalise_scratch,
            chars,
            token,
            ..
        } = scratch;
        for (i, (field, raw)) in self.fields.iter().zip(values).enumerate() {
            let text = field.text(raw, normalised, normalise_scratch)?;
            field.tokens(text, chars, token, |_| {})?;
            emit(i, text);
        }
        Ok(())
    }

    /// Sets `out` to the tokens of field `field` whose normalised text is `text` (from
    /// [`FieldTokenizer::texts`]): the same tokens, in the same order, as field `field` of
    /// [`FieldTokenizer::tokens`] on the values that text came from. No tokens for a field
    /// past the last.
    ///
    /// # Errors
    /// [`EncodingError::InvalidValue`] for a text the field cannot tokenise (a numeric field's
    /// text that is not a number: never one `texts` gave).
    pub fn text_tokens(
        &self,
        field: usize,
        text: &str,
        scratch: &mut FieldTokenScratch,
        out: &mut FieldTokens,
    ) -> Result<(), EncodingError> {
        out.clear();
        let Some(native) = self.fields.get(field) else {
            return Ok(());
        };
        if scratch.digests.len() != self.fields.len() {
            scratch.digests = self.fields.iter().map(|_| HashMap::default()).collect();
        }
        let FieldTokenScratch {
            chars,
            token,
            digests,
            ..
        } = scratch;
        native.tokens(text, chars, token, |t| {
            out.push(self.digest(&mut digests[field], field, t).to_vec());
        })
    }

    /// The keyed digest of plain token `t` of field `field`, through the field's memo.
    fn digest(&self, cache: &mut DigestCache, field: usize, t: &str) -> [u8; FIELD_TOKEN_BYTES] {
        if let Some(d) = cache.get(t.as_bytes()) {
            return *d;
        }
        let mut mac = self.keys[field].clone();
        mac.update(t.as_bytes());
        let mut d = [0u8; FIELD_TOKEN_BYTES];
        d.copy_from_slice(&mac.finalize().into_bytes()[..FIELD_TOKEN_BYTES]);
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(t.as_bytes().into(), d);
        d
    }

    /// A record must have one value per column.
    fn check_length(&self, values: &[&str]) -> Result<(), EncodingError> {
        if values.len() == self.columns {
            Ok(())
        } else {
            Err(EncodingError::RecordLength {
                expected: self.columns,
                found: values.len(),
            })
        }
    }

    /// Emits `(field index, token)` for every token of every field, in field order, before
    /// any hashing: what the encoder hashes into its Bloom filters.
    fn plain_tokens(
        &self,
        values: &[&str],
        normalised: &mut String,
        normalise_scratch: &mut String,
        chars: &mut Vec<char>,
        token: &mut String,
        mut emit: impl FnMut(usize, &str),
    ) -> Result<(), EncodingError> {
        self.check_length(values)?;
        for (i, (field, raw)) in self.fields.iter().zip(values).enumerate() {
            let text = field.text(raw, normalised, normalise_scratch)?;
            field.tokens(text, chars, token, |t| emit(i, t))?;
        }
        Ok(())
    }
}

/// HMAC accepts keys of every length; this is never reached.
#[cold]
fn unreachable_hmac() -> SimpleHmac<Sha3_256> {
    <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(&[0]).unwrap_or_else(|_| unreachable_hmac())
}

#[cfg(test)]
mod tests;
