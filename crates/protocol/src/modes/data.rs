//! [`PartyData`]: a party's records as columns. A record held as a struct of owned values (a
//! `String` id, a vector of optional key vectors, a CLK vector, a vector of token vectors)
//! costs ~150-190 bytes before its first key byte, in three or more heap allocations; a
//! session over 10⁸ records cannot afford that. Here every column is a list of blocks of
//! 4,096 values, each block one byte buffer with a 4-byte end per value: an id and a 12-digit
//! key cost their bytes plus 4 bytes each, and a column grows a block at a time (a single
//! buffer grown by doubling would hold up to twice its size while it grows).
//!
//! `validate` compares only linked records' fields, so its data keeps each compared field's
//! normalised value (tens of bytes a record) and tokenises a record's fields when its batch of
//! pairs is built ([`PartyData::with_field_values`], [`FieldReader`]), instead of every
//! record's tokens (17 bytes a token, ~500 bytes a record).

use std::sync::Arc;

use super::config::{FieldTokens, MAX_FIELD_TOKENS, PartyRecord};
use crate::ProtocolError;

/// Entries a [`Blocks`] block holds before the next starts.
const BLOCK_ENTRIES: usize = 4096;

/// Marks an absent value in a block's ends (its range is empty); also the most bytes a
/// block holds.
const ABSENT: u32 = 1 << 31;

/// One block of [`Blocks`]: its entries' bytes and the end of each in them.
#[derive(Clone, PartialEq, Eq, Default)]
struct Block {
    bytes: Vec<u8>,
    /// The end of each entry in `bytes`, with [`ABSENT`] set when the entry is absent.
    ends: Vec<u32>,
}

impl Block {
    fn end(&self, j: usize) -> usize {
        self.ends.get(j).map_or(0, |&e| (e & !ABSENT) as usize)
    }

    fn get(&self, j: usize) -> Option<&[u8]> {
        let end = *self.ends.get(j)?;
        if end & ABSENT != 0 {
            return None;
        }
        let start = if j == 0 { 0 } else { self.end(j - 1) };
        self.bytes.get(start..end as usize)
    }

    /// Entry `j`'s bytes, empty when absent.
    fn bytes_of(&self, j: usize) -> &[u8] {
        let start = if j == 0 { 0 } else { self.end(j - 1) };
        self.bytes.get(start..self.end(j)).unwrap_or_default()
    }
}

/// Optional byte strings in blocks of [`BLOCK_ENTRIES`] entries, each block one buffer with
/// a 4-byte end per entry. A single buffer grown by doubling holds up to twice its final
/// size while it grows (and copies it each time); blocks grow one at a time, each reserved
/// at the size of the one before, so the peak is the data plus about a block. A block also
/// ends early before its bytes would reach 2³¹ (an entry longer than that alone is cut to
/// it: no record comes near).
#[derive(Clone, PartialEq, Eq, Default)]
struct Blocks {
    blocks: Vec<Block>,
    /// The first entry of each block.
    firsts: Vec<usize>,
    len: usize,
}

impl Blocks {
    const fn len(&self) -> usize {
        self.len
    }

    /// The block and the position in it of entry `i`.
    fn locate(&self, i: usize) -> Option<(&Block, usize)> {
        if i >= self.len {
            return None;
        }
        let guess = i / BLOCK_ENTRIES;
        let b = if self.firsts.get(guess) == Some(&(guess * BLOCK_ENTRIES))
            && self.firsts.get(guess + 1).is_none_or(|&next| next > i)
        {
            guess
        } else {
            self.firsts.partition_point(|&first| first <= i) - 1
        };
        Some((&self.blocks[b], i - self.firsts[b]))
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        let (block, j) = self.locate(i)?;
        block.get(j)
    }

    /// Entry `i`'s bytes, empty when absent or past the end.
    fn bytes_of(&self, i: usize) -> &[u8] {
        self.locate(i).map_or(&[], |(block, j)| block.bytes_of(j))
    }

    /// The block the next entry goes to, started when the last is full.
    fn open(&mut self) -> &mut Block {
        let full = self
            .blocks
            .last()
            .is_none_or(|b| b.ends.len() >= BLOCK_ENTRIES);
        if full {
            self.start_block();
        }
        let last = self.blocks.len() - 1;
        &mut self.blocks[last]
    }

    fn start_block(&mut self) {
        let reserve = self.blocks.last_mut().map_or(0, |b| {
            b.bytes.shrink_to_fit();
            b.ends.shrink_to_fit();
            b.bytes.len() + b.bytes.len() / 16
        });
        self.blocks.push(Block {
            bytes: Vec::with_capacity(reserve.min(ABSENT as usize)),
            ends: Vec::with_capacity(BLOCK_ENTRIES),
        });
        self.firsts.push(self.len);
    }

    /// Appends an entry whose bytes `write` appends to the buffer it is given.
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let block = self.open();
        let start = block.bytes.len();
        write(&mut block.bytes);
        if block.bytes.len() >= ABSENT as usize && !block.ends.is_empty() {
            // Too big for this block: the entry starts the next one.
            let moved = block.bytes.split_off(start);
            self.start_block();
            let last = self.blocks.len() - 1;
            self.blocks[last].bytes = moved;
        }
        let last = self.blocks.len() - 1;
        let block = &mut self.blocks[last];
        block.bytes.truncate(ABSENT as usize - 1);
        block.ends.push(block.bytes.len() as u32);
        self.len += 1;
    }

    fn push(&mut self, value: Option<&[u8]>) {
        match value {
            Some(v) => self.push_with(|bytes| bytes.extend_from_slice(v)),
            None => {
                let block = self.open();
                block.ends.push(block.bytes.len() as u32 | ABSENT);
                self.len += 1;
            }
        }
    }

    fn reserve_blocks(&mut self, entries: usize) {
        let blocks = entries.div_ceil(BLOCK_ENTRIES);
        self.blocks.reserve(blocks);
        self.firsts.reserve(blocks);
    }

    fn shrink_to_fit(&mut self) {
        if let Some(b) = self.blocks.last_mut() {
            b.bytes.shrink_to_fit();
            b.ends.shrink_to_fit();
        }
        self.blocks.shrink_to_fit();
        self.firsts.shrink_to_fit();
    }
}

/// Records' compared-field tokens in blocks: field `f` of record `i` is one entry holding its
/// token list, each token written as its length (LEB128) and its bytes, so a 2-byte q-gram
/// costs 3 bytes and no allocation (as a `Vec<Vec<u8>>` it costs ~50). What a party's reader
/// appends each row's tokens to, and [`PartyData`]'s field column.
///
/// A column may instead hold each field's normalised *value* as its one "token" (none for a
/// missing value), for a [`PartyData`] made with [`PartyData::with_field_values`], which
/// tokenises a record's fields only when they are compared: a name is ~10 bytes, its tokens
/// ~30 of 16.
///
/// Cloning is cheap (the blocks are shared until one of the clones is changed).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FieldTokenColumn {
    /// Fields per record (the first record's count, unless set by
    /// [`FieldTokenColumn::new`]).
    per_record: usize,
    records: usize,
    /// One entry per (record, field), record-major.
    entries: Arc<Blocks>,
    /// The first record whose number of fields differs from `per_record`, and its number.
    ragged: Option<(usize, usize)>,
}

impl std::fmt::Debug for FieldTokenColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are personal data: show the shape only.
        f.debug_struct("FieldTokenColumn")
            .field("records", &self.records)
            .field("per_record", &self.per_record)
            .finish_non_exhaustive()
    }
}

/// Appends `token` as its LEB128 length and its bytes.
fn write_token(bytes: &mut Vec<u8>, token: &[u8]) {
    let mut len = token.len();
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(low);
            break;
        }
        bytes.push(low | 0x80);
    }
    bytes.extend_from_slice(token);
}

impl FieldTokenColumn {
    /// No records yet, each to have `per_record` fields.
    #[must_use]
    pub fn new(per_record: usize) -> Self {
        Self {
            per_record,
            ..Self::default()
        }
    }

    /// The number of records.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.records
    }

    /// Whether there are no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Fields per record.
    #[must_use]
    pub const fn per_record(&self) -> usize {
        self.per_record
    }

    /// Reserves room for the block list of `records` more records (the blocks themselves
    /// are made as they fill).
    pub fn reserve(&mut self, records: usize) {
        Arc::make_mut(&mut self.entries).reserve_blocks(records.saturating_mul(self.per_record));
    }

    /// Appends a record's fields (the first record of a column made with `default()` sets
    /// the number of fields per record; a record with more is cut, one with fewer padded
    /// with empty fields, and the first such record is remembered for the session's check).
    pub fn push(&mut self, fields: &[FieldTokens]) {
        if self.records == 0 && self.per_record == 0 {
            self.per_record = fields.len();
        }
        if fields.len() != self.per_record && self.ragged.is_none() {
            self.ragged = Some((self.records, fields.len()));
        }
        self.records += 1;
        let entries = Arc::make_mut(&mut self.entries);
        for f in 0..self.per_record {
            let tokens = fields.get(f).map_or(&[][..], Vec::as_slice);
            entries.push_with(|bytes| {
                for token in tokens {
                    write_token(bytes, token);
                }
            });
        }
    }

    /// Appends a record's fields as normalised values, each field's value its one "token"
    /// and an empty value none (as [`FieldTokenColumn::push`] otherwise): the column a
    /// [`PartyData::with_field_values`] takes.
    pub fn push_values<'v>(&mut self, values: impl IntoIterator<Item = &'v [u8]>) {
        let mut count = 0;
        let first = self.records == 0 && self.per_record == 0;
        let entries = Arc::make_mut(&mut self.entries);
        for value in values {
            if count < self.per_record || first {
                entries.push_with(|bytes| {
                    if !value.is_empty() {
                        write_token(bytes, value);
                    }
                });
            }
            count += 1;
        }
        if first {
            self.per_record = count;
        }
        for _ in count..self.per_record {
            entries.push_with(|_| {});
        }
        if count != self.per_record && self.ragged.is_none() {
            self.ragged = Some((self.records, count));
        }
        self.records += 1;
    }

    /// The tokens of field `field` of record `record` (none past the end).
    #[must_use]
    pub fn field(&self, record: usize, field: usize) -> FieldView<'_> {
        if field >= self.per_record || record >= self.records {
            return FieldView { rest: &[] };
        }
        FieldView {
            rest: self.entries.bytes_of(record * self.per_record + field),
        }
    }

    /// The tokens of every field of record `i`, as owned values.
    #[must_use]
    pub fn record(&self, i: usize) -> Vec<FieldTokens> {
        (0..self.per_record)
            .map(|f| self.field(i, f).map(<[u8]>::to_vec).collect())
            .collect()
    }

    /// Keeps the records for which `keep(i)` is true, in order (a shard's, a cascade
    /// stage's).
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let mut entries = Blocks::default();
        let mut records = 0;
        let mut ragged = None;
        for i in 0..self.records {
            if !keep(i) {
                continue;
            }
            if let Some((r, count)) = self.ragged
                && r == i
            {
                ragged = Some((records, count));
            }
            for f in 0..self.per_record {
                let bytes = self.entries.bytes_of(i * self.per_record + f);
                entries.push_with(|out| out.extend_from_slice(bytes));
            }
            records += 1;
        }
        self.entries = Arc::new(entries);
        self.records = records;
        self.ragged = ragged;
        self.shrink_to_fit();
    }

    /// Gives unused capacity back.
    pub fn shrink_to_fit(&mut self) {
        Arc::make_mut(&mut self.entries).shrink_to_fit();
    }
}

/// The tokens of one compared field of one record, read from [`PartyData`] without a copy.
#[derive(Debug, Clone, Copy)]
pub struct FieldView<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldView<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let (&byte, rest) = self.rest.split_first()?;
            self.rest = rest;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let (token, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(token)
    }
}

/// Turns a compared field's normalised value into its tokens, for a [`PartyData`] that keeps
/// values ([`PartyData::with_field_values`]): the party's tokenizer, behind a trait so that
/// the protocol does not depend on the encoder.
pub trait FieldTokenSource: Send + Sync {
    /// A tokenizer for one run of values on one thread (it may cache between calls).
    fn tokenizer(&self) -> Box<dyn FieldValueTokenizer + '_>;
}

/// One thread's tokenizer of [`FieldTokenSource`].
pub trait FieldValueTokenizer {
    /// Sets `out` to the tokens of field `field` whose normalised value is `value`: exactly
    /// the tokens the party would have read for it.
    ///
    /// # Errors
    /// The value cannot be tokenised (the text of the error, without the value).
    fn tokens(&mut self, field: usize, value: &[u8], out: &mut FieldTokens) -> Result<(), String>;
}

/// Reads records' compared fields as tokens, tokenising kept values when the data holds
/// values ([`PartyData::field_reader`]). One per thread and run of records.
pub struct FieldReader<'a> {
    data: &'a PartyData,
    tokenizer: Option<Box<dyn FieldValueTokenizer + 'a>>,
}

impl std::fmt::Debug for FieldReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldReader")
            .field("values", &self.tokenizer.is_some())
            .finish_non_exhaustive()
    }
}

impl FieldReader<'_> {
    /// Sets `out` to the tokens of compared field `field` of record `record` (none past the
    /// end).
    ///
    /// # Errors
    /// [`ProtocolError::Local`] when a kept value cannot be tokenised or has more than
    /// [`MAX_FIELD_TOKENS`] tokens (the check a session makes of token columns when it
    /// starts), naming the record and the field.
    pub fn tokens(
        &mut self,
        record: usize,
        field: usize,
        out: &mut FieldTokens,
    ) -> Result<(), ProtocolError> {
        out.clear();
        let view = self.data.field(record, field);
        let Some(tokenizer) = &mut self.tokenizer else {
            out.extend(view.map(<[u8]>::to_vec));
            return Ok(());
        };
        let bad = |reason: String| ProtocolError::Local {
            what: "party data",
            reason: format!(
                "record {} ('{}'), compared field {}: {reason}",
                record + 1,
                self.data.id(record),
                field + 1
            ),
        };
        if let Some(value) = view.into_iter().next() {
            tokenizer.tokens(field, value, out).map_err(bad)?;
        }
        if out.len() > MAX_FIELD_TOKENS {
            return Err(bad(format!(
                "{} tokens, over the limit of {MAX_FIELD_TOKENS}",
                out.len()
            )));
        }
        Ok(())
    }
}

/// The first record whose number of keys or compared fields differs from the first
/// record's: [`PartyData`] holds as many key and field columns as its first record has, and
/// a session checks the rest against its mode ([`new_driver`](super::new_driver)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ragged {
    /// (record, its number of keys).
    pub(crate) keys: Option<(usize, usize)>,
    /// (record, its number of compared fields).
    pub(crate) fields: Option<(usize, usize)>,
}

/// This party's records, in input order (the rows of the outcome follow it), as columns: the
/// local ids, each match key of the cascade, the record-level CLKs and the compared fields'
/// tokens (or their normalised values, [`PartyData::with_field_values`]), each in blocks with
/// an offset per value. A mode's data carries only the columns it uses (no CLKs in `exact`, no
/// fields outside `validate` and `fuzzy`).
///
/// Build it with [`PartyData::with_columns`] and [`PartyData::push`] (how `blindlink-party`
/// builds it from the rows it read), or from [`PartyRecord`]s with
/// [`PartyData::from_records`] or `collect()`.
///
/// # Example
/// ```
/// use blindlink_protocol::{PartyData, PartyRecord};
/// let data = PartyData::from_records(vec![
///     PartyRecord { id: "a1".into(), keys: vec![Some(b"123".to_vec()), None],
///         ..PartyRecord::default() },
/// ]);
/// assert_eq!((data.len(), data.id(0), data.key(0, 0), data.key(0, 1)),
///     (1, "a1", Some(&b"123"[..]), None));
/// ```
#[derive(Clone, Default)]
pub struct PartyData {
    ids: Blocks,
    keys: Vec<Blocks>,
    clks: Blocks,
    fields: FieldTokenColumn,
    /// Set when `fields` holds normalised values: what makes their tokens.
    field_values: Option<Arc<dyn FieldTokenSource>>,
    /// The first record with another number of keys than the columns, and its number.
    ragged_keys: Option<(usize, usize)>,
}

impl PartialEq for PartyData {
    /// The same columns, and both holding field values or both tokens (the tokenizers are
    /// not compared).
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids
            && self.keys == other.keys
            && self.clks == other.clks
            && self.fields == other.fields
            && self.field_values.is_some() == other.field_values.is_some()
            && self.ragged_keys == other.ragged_keys
    }
}

impl Eq for PartyData {}

impl std::fmt::Debug for PartyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys, CLKs and tokens are personal data: show the shape only.
        f.debug_struct("PartyData")
            .field("records", &self.len())
            .field("keys", &self.keys.len())
            .field("fields", &self.fields.per_record)
            .field("field_values", &self.field_values.is_some())
            .finish_non_exhaustive()
    }
}

impl PartyData {
    /// No records yet, with `keys` match-key columns and `fields` compared fields per record.
    #[must_use]
    pub fn with_columns(keys: usize, fields: usize) -> Self {
        Self {
            keys: vec![Blocks::default(); keys],
            fields: FieldTokenColumn::new(fields),
            ..Self::default()
        }
    }

    /// The records, in order.
    #[must_use]
    pub fn from_records(records: Vec<PartyRecord>) -> Self {
        records.into_iter().collect()
    }

    /// Reserves room for the block lists of `records` more records (each column grows a
    /// block at a time as records are pushed).
    pub fn reserve(&mut self, records: usize) {
        self.ids.reserve_blocks(records);
        for column in &mut self.keys {
            column.reserve_blocks(records);
        }
        self.fields.reserve(records);
    }

    /// Appends a record: its id, its keys (in cascade order; a missing key is `None`, costs
    /// no allocation and is never matched), its CLK and its compared fields' tokens. Keys
    /// and fields beyond [`PartyData::with_columns`]'s counts are dropped, missing ones are
    /// absent (or empty), and the first record whose count differs is remembered for the
    /// session's check, which refuses the data if the mode uses that column.
    pub fn push<'k>(
        &mut self,
        id: &str,
        keys: impl IntoIterator<Item = Option<&'k [u8]>>,
        clk: Option<&[u8]>,
        fields: &[FieldTokens],
    ) {
        let record = self.len();
        self.ids.push(Some(id.as_bytes()));
        let mut count = 0;
        for key in keys {
            if let Some(column) = self.keys.get_mut(count) {
                column.push(key);
            }
            count += 1;
        }
        for column in self.keys.iter_mut().skip(count) {
            column.push(None);
        }
        if count != self.keys.len() && self.ragged_keys.is_none() {
            self.ragged_keys = Some((record, count));
        }
        self.clks.push(clk);
        self.fields.push(fields);
    }

    /// Gives unused capacity back (after the last [`PartyData::push`]).
    pub fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        for column in &mut self.keys {
            column.shrink_to_fit();
        }
        self.clks.shrink_to_fit();
        self.fields.shrink_to_fit();
    }

    /// The number of records.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// The number of match-key columns.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The number of compared fields per record.
    #[must_use]
    pub fn field_count(&self) -> usize {
        self.fields.per_record
    }

    /// The local id of record `i` (empty past the end).
    #[must_use]
    pub fn id(&self, i: usize) -> &str {
        self.ids
            .get(i)
            .and_then(|id| std::str::from_utf8(id).ok())
            .unwrap_or_default()
    }

    /// Match key `k` of record `i`, if it has one.
    #[must_use]
    pub fn key(&self, i: usize, k: usize) -> Option<&[u8]> {
        self.keys.get(k)?.get(i)
    }

    /// The CLK of record `i`, if it has one.
    #[must_use]
    pub fn clk(&self, i: usize) -> Option<&[u8]> {
        self.clks.get(i)
    }

    /// The tokens of compared field `f` of record `i` (none past the end); for data made
    /// with [`PartyData::with_field_values`], the field's normalised value as its one item
    /// (none when missing): read tokens through [`PartyData::field_reader`].
    #[must_use]
    pub fn field(&self, i: usize, f: usize) -> FieldView<'_> {
        if f >= self.fields.per_record || i >= self.len() {
            return FieldView { rest: &[] };
        }
        self.fields.field(i, f)
    }

    /// Whether the compared fields are kept as normalised values, tokenised when read
    /// through [`PartyData::field_reader`].
    #[must_use]
    pub fn has_field_values(&self) -> bool {
        self.field_values.is_some()
    }

    /// A reader of the compared fields' tokens, for one thread and run of records.
    #[must_use]
    pub fn field_reader(&self) -> FieldReader<'_> {
        FieldReader {
            data: self,
            tokenizer: self
                .field_values
                .as_deref()
                .map(FieldTokenSource::tokenizer),
        }
    }

    /// The tokens of every compared field of record `i`, as owned values (tokenised when the
    /// data keeps values; a field whose value does not tokenise, which a party's reader never
    /// keeps, has none).
    #[must_use]
    pub fn fields(&self, i: usize) -> Vec<FieldTokens> {
        let mut reader = self.field_reader();
        (0..self.fields.per_record)
            .map(|f| {
                let mut tokens = Vec::new();
                if reader.tokens(i, f, &mut tokens).is_err() {
                    tokens.clear();
                }
                tokens
            })
            .collect()
    }

    /// Record `i` as an owned [`PartyRecord`] (`None` past the end).
    #[must_use]
    pub fn record(&self, i: usize) -> Option<PartyRecord> {
        (i < self.len()).then(|| self.owned(i))
    }

    fn owned(&self, i: usize) -> PartyRecord {
        PartyRecord {
            id: self.id(i).to_owned(),
            keys: (0..self.keys.len())
                .map(|k| self.key(i, k).map(<[u8]>::to_vec))
                .collect(),
            clk: self.clk(i).map(<[u8]>::to_vec),
            fields: self.fields(i),
        }
    }

    /// Every record as an owned [`PartyRecord`], in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = PartyRecord> + '_ {
        (0..self.len()).map(|i| self.owned(i))
    }

    /// Sets the compared fields' tokens of every record, read apart from the rest (as a
    /// party's reader does): a column of another length than the records is refused by the
    /// session's check of a mode that compares fields.
    #[must_use]
    pub fn with_fields(mut self, fields: FieldTokenColumn) -> Self {
        self.fields = fields;
        self.field_values = None;
        self
    }

    /// As [`PartyData::with_fields`], with each field's normalised value in `values` (as
    /// [`FieldTokenColumn::push_values`] writes them) instead of its tokens: `tokens` makes a
    /// record's tokens when its fields are compared ([`PartyData::field_reader`]). What
    /// `validate` takes, which compares only linked records: a value is a few bytes, its
    /// tokens 17 bytes each.
    ///
    /// # Security
    /// The values are personal data in the clear (keyed tokens are not); they stay in the
    /// party's memory as its input did, and never reach the peer: only their tokens do,
    /// through the grouped PSI, as before.
    #[must_use]
    pub fn with_field_values(
        mut self,
        values: FieldTokenColumn,
        tokens: Arc<dyn FieldTokenSource>,
    ) -> Self {
        self.fields = values;
        self.field_values = Some(tokens);
        self
    }

    pub(crate) fn ragged(&self) -> Ragged {
        let fields = if self.fields.len() == self.len() {
            self.fields.ragged
        } else {
            Some((self.fields.len().min(self.len().saturating_sub(1)), 0))
        };
        Ragged {
            keys: self.ragged_keys,
            fields,
        }
    }
}

impl FromIterator<PartyRecord> for PartyData {
    /// The records in order, with as many key and field columns as the first has.
    fn from_iter<I: IntoIterator<Item = PartyRecord>>(records: I) -> Self {
        let mut records = records.into_iter().peekable();
        let (keys, fields) = records
            .peek()
            .map_or((0, 0), |r| (r.keys.len(), r.fields.len()));
        let mut data = Self::with_columns(keys, fields);
        data.reserve(records.size_hint().0);
        for r in records {
            data.push(
                &r.id,
                r.keys.iter().map(Option::as_deref),
                r.clk.as_deref(),
                &r.fields,
            );
        }
        data.shrink_to_fit();
        data
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record() -> impl Strategy<Value = PartyRecord> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        (
            "[a-zé0-9]{0,12}",
            proptest::collection::vec(proptest::option::of(bytes()), 2),
            proptest::option::of(bytes()),
            proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..6),
                3,
            ),
        )
            .prop_map(|(id, keys, clk, fields)| PartyRecord {
                id,
                keys,
                clk,
                fields,
            })
    }

    proptest! {
        /// The columns give back exactly the records they were built from, absent keys and
        /// CLKs absent (not empty), and empty keys, tokens and fields as empty.
        #[test]
        fn columns_round_trip_their_records(
            records in proptest::collection::vec(record(), 0..30),
        ) {
            let data = PartyData::from_records(records.clone());
            prop_assert_eq!(data.len(), records.len());
            prop_assert_eq!(data.records().collect::<Vec<_>>(), records.clone());
            for (i, r) in records.iter().enumerate() {
                prop_assert_eq!(data.id(i), r.id.as_str());
                for (k, key) in r.keys.iter().enumerate() {
                    prop_assert_eq!(data.key(i, k), key.as_deref());
                }
                prop_assert_eq!(data.clk(i), r.clk.as_deref());
            }
            prop_assert_eq!(data.ragged(), Ragged::default());
        }
    }

    /// A record as read back: its id, its keys, and the data's ragged records.
    type ReadBack<'a> = (&'a str, Vec<Option<&'a [u8]>>, Ragged);

    fn check(records: Vec<PartyRecord>, expected: &[ReadBack<'_>]) {
        let data = PartyData::from_records(records);
        let got: Vec<ReadBack<'_>> = (0..data.len())
            .map(|i| {
                let keys = (0..data.key_count()).map(|k| data.key(i, k)).collect();
                (data.id(i), keys, data.ragged())
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn absent_keys_stay_absent_and_ragged_records_are_remembered() {
        let keyed = |id: &str, keys: Vec<Option<&[u8]>>| PartyRecord {
            id: id.into(),
            keys: keys.into_iter().map(|k| k.map(<[u8]>::to_vec)).collect(),
            ..PartyRecord::default()
        };
        let even = Ragged::default();
        check(
            vec![
                keyed("a", vec![None, Some(b"")]),
                keyed("b", vec![Some(b"1"), None]),
            ],
            &[
                ("a", vec![None, Some(b"")], even),
                ("b", vec![Some(b"1"), None], even),
            ],
        );
        let ragged = Ragged {
            keys: Some((1, 1)),
            fields: None,
        };
        check(
            vec![
                keyed("a", vec![Some(b"1"), Some(b"2")]),
                keyed("b", vec![Some(b"3")]),
                keyed("c", vec![]),
            ],
            &[
                ("a", vec![Some(b"1"), Some(b"2")], ragged),
                ("b", vec![Some(b"3"), None], ragged),
                ("c", vec![None, None], ragged),
            ],
        );
    }

    /// Columns over many blocks (30,000 key and id entries, 90,000 field entries) give back
    /// every record, and keep them through `retain`.
    #[test]
    fn columns_span_blocks() {
        let records: Vec<PartyRecord> = (0..30_000u32)
            .map(|i| PartyRecord {
                id: format!("r{i}"),
                keys: vec![(i % 7 != 0).then(|| i.to_be_bytes().to_vec())],
                clk: None,
                fields: vec![
                    vec![i.to_le_bytes().to_vec(); (i % 3) as usize],
                    Vec::new(),
                    vec![vec![b'x'; (i % 200) as usize]],
                ],
            })
            .collect();
        let data = PartyData::from_records(records.clone());
        assert_eq!(data.records().collect::<Vec<_>>(), records);
        let mut column = FieldTokenColumn::default();
        for r in &records {
            column.push(&r.fields);
        }
        column.retain(|i| i % 3 == 1);
        let kept: Vec<_> = records.iter().skip(1).step_by(3).collect();
        assert_eq!(column.len(), kept.len());
        for (i, r) in kept.iter().enumerate() {
            assert_eq!(column.record(i), r.fields, "record {i}");
        }
    }

    /// Tokens of a value: its bytes two at a time, and an error for a value with a `!`.
    struct Pairs;

    impl FieldValueTokenizer for Pairs {
        fn tokens(
            &mut self,
            field: usize,
            value: &[u8],
            out: &mut FieldTokens,
        ) -> Result<(), String> {
            if value.contains(&b'!') {
                return Err(format!("field {field} has a '!'"));
            }
            out.extend(value.chunks(2).map(<[u8]>::to_vec));
            Ok(())
        }
    }

    impl FieldTokenSource for Pairs {
        fn tokenizer(&self) -> Box<dyn FieldValueTokenizer + '_> {
            Box::new(Self)
        }
    }

    /// Data that keeps values gives them as `field` and their tokens through the reader (and
    /// `fields`); a missing value has no tokens; a value that does not tokenise, or has too
    /// many tokens, is an error naming the record and the field.
    #[test]
    fn kept_values_are_tokenised_when_read() {
        let long = vec![b'a'; 2 * MAX_FIELD_TOKENS + 2];
        let mut values = FieldTokenColumn::default();
        values.push_values([&b"abcde"[..], b""]);
        values.push_values([&b"no!"[..], b"xy"]);
        values.push_values([&long[..], b"z"]);
        values.push_values([&b"cut"[..]]);
        let mut data = PartyData::with_columns(0, 0);
        for id in ["a", "b", "c", "d"] {
            data.push(id, [], None, &[]);
        }
        let data = data.with_field_values(values, Arc::new(Pairs));
        assert!(data.has_field_values());
        assert_eq!(data.field(0, 0).collect::<Vec<_>>(), [b"abcde"]);
        assert_eq!(data.field(0, 1).count(), 0);
        let t = |v: &[&[u8]]| v.iter().map(|t| t.to_vec()).collect::<Vec<_>>();
        assert_eq!(data.fields(0), [t(&[b"ab", b"cd", b"e"]), t(&[])]);
        assert_eq!(data.fields(3), [t(&[b"cu", b"t"]), t(&[])]);
        assert_eq!(data.ragged().fields, Some((3, 1)));
        let mut reader = data.field_reader();
        let mut out = vec![b"stale".to_vec()];
        let mut read = |record, field| {
            reader
                .tokens(record, field, &mut out)
                .map(|()| out.len())
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(1, 1), Ok(1));
        assert_eq!(read(9, 0), Ok(0));
        assert_eq!(
            read(1, 0),
            Err("invalid party data: record 2 ('b'), compared field 1: field 0 has a '!'".into())
        );
        assert_eq!(
            read(2, 0),
            Err(format!(
                "invalid party data: record 3 ('c'), compared field 1: {} tokens, over \
                 the limit of {MAX_FIELD_TOKENS}",
                MAX_FIELD_TOKENS + 1
            ))
        );
        assert_eq!(
            format!("{data:?}"),
            "PartyData { records: 4, keys: 0, fields: 2, field_values: true, .. }"
        );
    }

    #[test]
    fn a_field_reads_its_tokens_without_a_copy() {
        let long = vec![7u8; 300];
        let data = PartyData::from_records(vec![PartyRecord {
            id: "x".into(),
            fields: vec![vec![b"ab".to_vec(), Vec::new(), long.clone()], Vec::new()],
            ..PartyRecord::default()
        }]);
        let first: Vec<&[u8]> = data.field(0, 0).collect();
        assert_eq!(first, [&b"ab"[..], &[][..], &long[..]]);
        assert_eq!(data.field(0, 1).count(), 0);
        assert_eq!(data.field(0, 2).count(), 0);
        assert_eq!(data.field(1, 0).count(), 0);
    }
}
