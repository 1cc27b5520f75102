//! Records as a stream: a source (a CSV reader, a database cursor) hands rows one at a time to
//! a [`RecordsBuilder`], which binds their columns, applies the `invalid_rows` policy and keeps
//! only what the mode uses — ids, each cascade step's key, CLKs if an encoder was given, the
//! compared fields' normalised values if a tokenizer was (checked as tokenising them would
//! check them; tokenised when a mode needs the tokens) — never the rows themselves. Memory grows with the records kept,
//! not with the input read.
//!
//! Rows are checked as they arrive (field count, era dates, the record id) and encoded in
//! batches of [`BATCH_ROWS`] on the current rayon pool. A bad row (see [`InputOptions`]) stops
//! the run under `abort`, naming where it is ([`RecordSource::at`]: `file:line` for a CSV, the
//! query, row number and record id for a database), the field and the reason; the earlier
//! rows are encoded first, so the error is always the first bad row in input order. Under
//! `reject` the row is withheld and listed in [`PartyRecords::rejects`]; the rows kept are
//! encoded exactly as the same input without the bad rows would be (randomised hardening is
//! seeded by a record's position among the kept rows), so they link the same. A repeated id
//! rejects the later rows and keeps the first.
//!
//! Era dates ([`InputOptions::era_dates`]): under `lenient`, a value of a column that a date
//! step normalises (in the schema or a match key) and that is a Japanese era date outside its
//! era (`平成32年1月1日`) is replaced by the Gregorian date it denotes (`2020-01-01`) before
//! anything else reads it, and counted in [`PartyRecords::era_dates_read_leniently`].
//!
//! An input with no data rows left (empty, or every row rejected) is refused: a session over
//! zero records would still tell the peer this side's set size.
//!
//! **Sharded builds** ([`RecordsSpec::shard`]): each row's first match key and its shard
//! ([`ShardAssigner`]) are computed as the row arrives, after the row checks, and a row of
//! another shard is dropped before anything else is normalised, tokenized or encoded; the
//! records kept are exactly those [`retain_shard`](crate::retain_shard) keeps from the whole
//! input. Counts still sum over the shards to the unsharded ones: a row rejected before its
//! shard is known (field count, invalid UTF-8, an empty or repeated id) is listed and counted
//! by shard 0 only (under `abort` it stops every shard, as it stops an unsharded run), as are
//! era dates read leniently; a value the tokenizer or encoder rejects is found, listed and
//! counted by the row's own shard only, since no other shard encodes it. A shard that keeps no
//! record while the file has rows is not an error (its session says so with a set size of 0),
//! nor is a shard's own file from `blindlink split` with no data row
//! ([`RecordsSpec::own_shard_file`]): the same shard, read from its own file.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hasher as _};

use blindlink_encoding::normalise::date::{EraReading, NumericOrder, normalise_date_with};
use blindlink_encoding::{
    ClkEncoder, EncoderScratch, EncodingError, FieldTokenScratch, FieldTokenizer, FieldTokens,
    SchemaDocument,
};
use rayon::prelude::*;

use crate::binding::{ColumnBinding, InputColumns};
use crate::keys::{Keyless, MatchKeyEncoder};
use crate::records::{MatchKeyColumn, PartyRecords, RejectedRow, Rejects};
use crate::shard::{Shard, ShardAssigner, ShardSelection};
use crate::{EraDates, InvalidRows, PartyError};

/// Rows encoded together (in parallel) by a [`RecordsBuilder`].
pub const BATCH_ROWS: usize = 1 << 15;

/// What a [`RecordsBuilder`] does with bad rows and era dates (`[input] invalid_rows` and
/// `era_dates`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputOptions {
    /// Abort on the first bad row, or withhold and list them.
    pub invalid_rows: InvalidRows,
    /// Strict or lenient reading of era dates outside their era.
    pub era_dates: EraDates,
}

/// Where rows come from, as errors and reports name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RecordSource {
    /// Records built by hand (tests): shown as `input`.
    #[default]
    Unnamed,
    /// A CSV file, as shown: rows are named `file:line`, the header being line 1.
    Csv(String),
    /// A database query, as shown (`postgres query "SELECT ..."`): rows are named by their
    /// number (from 1) and their record id.
    Query(String),
}

impl RecordSource {
    /// The source as shown in messages.
    #[must_use]
    pub fn shown(&self) -> &str {
        match self {
            Self::Unnamed => "input",
            Self::Csv(shown) | Self::Query(shown) => shown,
        }
    }

    /// Where the header is: `file:1`, or the query's columns.
    #[must_use]
    pub fn header_at(&self) -> String {
        match self {
            Self::Query(shown) => format!("{shown}: columns"),
            other => format!("{}:1", other.shown()),
        }
    }

    /// Where row `line` (a CSV line, or a query's row number) with record id `id` is:
    /// `file:line`, or `query row n (id_column 'id')`.
    #[must_use]
    pub fn at(&self, line: u64, id_column: &str, id: &str) -> String {
        match self {
            Self::Query(shown) if id.is_empty() => format!("{shown} row {line}"),
            Self::Query(shown) => format!("{shown} row {line} ({id_column} '{id}')"),
            other => format!("{}:{line}", other.shown()),
        }
    }

    /// What a row position is called in messages: `line` or `row`.
    #[must_use]
    pub const fn row_word(&self) -> &'static str {
        match self {
            Self::Query(_) => "row",
            _ => "line",
        }
    }
}

/// What a [`RecordsBuilder`] reads and computes.
#[derive(Debug, Clone, Copy)]
pub struct RecordsSpec<'a> {
    /// The column mapping of `[input]`.
    pub columns: InputColumns<'a>,
    /// The schema (its columns are bound only when an encoder or a tokenizer is given).
    pub schema: &'a SchemaDocument,
    /// Encodes each record's CLK (modes that use CLKs only).
    pub encoder: Option<&'a ClkEncoder>,
    /// Normalises each record's compared fields (modes that compare fields only).
    pub tokenizer: Option<&'a FieldTokenizer>,
    /// Bad rows and era dates.
    pub options: InputOptions,
    /// A sharded run: only this shard's rows are kept (see [`RecordsBuilder`]'s docs on
    /// sharding); `None` keeps every row.
    pub shard: Option<(Shard, &'a ShardAssigner)>,
    /// The input is the file `blindlink split` wrote for [`RecordsSpec::shard`]: no data rows
    /// then mean a shard that no record falls in (a valid empty session, as a shard that
    /// keeps none of a file's rows), not an empty input.
    pub own_shard_file: bool,
}

/// A row waiting in the batch: it passed the row checks and its id is new. Its values are
/// one string and their ends (two allocations a row, not one per value: allocation was half
/// of the reading time).
#[derive(Debug)]
struct PendingRow {
    line: u64,
    text: String,
    ends: Vec<usize>,
    /// The first cascade step's key, when the shard filter already computed it.
    first_key: Option<Result<Vec<u8>, Keyless>>,
}

impl PendingRow {
    fn new(line: u64, values: &[&str]) -> Self {
        let mut text = String::with_capacity(values.iter().map(|v| v.len()).sum());
        let mut ends = Vec::with_capacity(values.len());
        for value in values {
            text.push_str(value);
            ends.push(text.len());
        }
        Self {
            line,
            text,
            ends,
            first_key: None,
        }
    }

    /// The value of column `c`.
    fn value(&self, c: usize) -> &str {
        let start = if c == 0 { 0 } else { self.ends[c - 1] };
        &self.text[start..self.ends[c]]
    }

    /// The values, for `rejects.csv`.
    fn values(&self) -> Vec<String> {
        (0..self.ends.len())
            .map(|c| self.value(c).to_owned())
            .collect()
    }
}

/// The shard filter of a sharded build.
#[derive(Debug)]
struct ShardFilter {
    shard: Shard,
    assigner: ShardAssigner,
    /// Rows of other shards that passed the row checks (records of the file, not of ours).
    elsewhere: u64,
    /// Rows not counted in this shard's `rows_read`: `elsewhere` and the rows rejected before
    /// their shard was known, which shard 0 counts.
    rows_elsewhere: u64,
}

/// A 128-bit hash of a record id, for the repeated-id check: two distinct ids of a file of
/// `n` rows share one with probability about `n^2 / 2^129` (below `2^-70` at `n = 10^9`),
/// and the set holds 16 bytes an id instead of a copy of it.
fn id_hash(id: &str) -> u128 {
    let half = |seed: u8| {
        let mut hasher = DefaultHasher::new();
        hasher.write_u8(seed);
        hasher.write(id.as_bytes());
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// Builds a party's [`PartyRecords`] from rows pushed one at a time (see the module docs).
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use blindlink_encoding::SchemaDocument;
/// use blindlink_party::{InputColumns, KeyColumn, MatchKeySpec, RecordSource, RecordsBuilder,
///     RecordsSpec};
///
/// let schema = SchemaDocument::parse("version = 1\n[filter]\nbits = 64\n[[field]]\n\
///     column = \"name\"\ntokens = { kind = \"exact\" }\nbits_per_token = 2\n")?;
/// let keys = [MatchKeySpec { name: "n".into(), columns: vec![KeyColumn {
///     column: "number".into(), normalise: vec!["digits-only".into()] }] }];
/// let none = BTreeMap::new();
/// let spec = RecordsSpec {
///     columns: InputColumns { id_column: "id", match_keys: &keys, schema_columns: &none,
///         combined_columns: &BTreeMap::new() },
///     schema: &schema, encoder: None, tokenizer: None, options: Default::default(), shard: None,
///     own_shard_file: false,
/// };
/// let mut builder = RecordsBuilder::new(RecordSource::Csv("in.csv".into()),
///     &["id", "number"], spec)?;
/// builder.push(2, &["a", "12-3"])?;
/// builder.push(3, &["b", ""])?;
/// let records = builder.finish()?;
/// assert_eq!(records.ids, ["a", "b"]);
/// assert_eq!(records.match_keys[0].keyless, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RecordsBuilder<'a> {
    source: RecordSource,
    id_column: String,
    header: Vec<String>,
    binding: ColumnBinding,
    key_encoders: Vec<MatchKeyEncoder>,
    encoder: Option<&'a ClkEncoder>,
    tokenizer: Option<&'a FieldTokenizer>,
    options: InputOptions,
    /// The columns whose era dates are read leniently (empty under `strict`).
    lenient_dates: Vec<usize>,
    pending: Vec<PendingRow>,
    /// The ids seen so far, as 128-bit hashes ([`id_hash`]): no allocation per row.
    seen: HashSet<u128>,
    shard: Option<ShardFilter>,
    own_shard_file: bool,
    records: PartyRecords,
    rejected: Vec<RejectedRow>,
    date: String,
}

impl<'a> RecordsBuilder<'a> {
    /// A builder for rows of `header` from `source`.
    ///
    /// # Errors
    /// A column is missing or repeated in `header`, or a match key's normalisation is invalid.
    pub fn new(
        source: RecordSource,
        header: &[&str],
        spec: RecordsSpec<'a>,
    ) -> Result<Self, PartyError> {
        let binding = ColumnBinding::bind(
            &source.header_at(),
            header,
            spec.columns,
            spec.schema,
            spec.encoder.is_some() || spec.tokenizer.is_some(),
        )?;
        let key_encoders = spec
            .columns
            .match_keys
            .iter()
            .map(MatchKeyEncoder::new)
            .collect::<Result<Vec<_>, _>>()?;
        let lenient_dates = match spec.options.era_dates {
            EraDates::Strict => Vec::new(),
            EraDates::Lenient => binding.date_sources.iter().copied().collect(),
        };
        let records = PartyRecords {
            clk_bytes: spec.encoder.map_or(0, ClkEncoder::bytes_per_clk),
            match_keys: key_encoders
                .iter()
                .map(|k| MatchKeyColumn::new(k.name()))
                .collect(),
            source: source.clone(),
            ..PartyRecords::default()
        };
        Ok(Self {
            id_column: spec.columns.id_column.to_owned(),
            header: header.iter().map(|&h| h.to_owned()).collect(),
            binding,
            key_encoders,
            encoder: spec.encoder,
            tokenizer: spec.tokenizer,
            options: spec.options,
            lenient_dates,
            pending: Vec::with_capacity(BATCH_ROWS),
            seen: HashSet::new(),
            shard: spec.shard.map(|(shard, assigner)| ShardFilter {
                shard,
                assigner: assigner.clone(),
                elsewhere: 0,
                rows_elsewhere: 0,
            }),
            own_shard_file: spec.own_shard_file,
            records,
            rejected: Vec::new(),
            date: String::new(),
            source,
        })
    }

    /// The source's header row.
    #[must_use]
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Takes the next row (`line`: its CSV line, or its row number in a query's result).
    ///
    /// # Errors
    /// Under `abort`, the first bad row so far (this one or one waiting in the batch): a field
    /// count other than the header's, an empty or repeated record id, a value the encoder or
    /// tokenizer rejects.
    pub fn push(&mut self, line: u64, row: &[&str]) -> Result<(), PartyError> {
        self.records.rows_read += 1;
        if row.len() != self.header.len() {
            if self.counted_elsewhere() {
                return Ok(());
            }
            let reason = format!(
                "the row has {} fields but the header has {}",
                row.len(),
                self.header.len()
            );
            let id = row.get(self.binding.id).copied().unwrap_or("");
            let values = row.iter().map(|&v| v.to_owned()).collect();
            return self.bad(line, id, "", reason, values, None);
        }
        let replaced = lenient_replacements(row, &self.lenient_dates, &mut self.date);
        // Counted in shard 0 only (every row's), so that the shards' counts sum to the file's.
        if self.shard.as_ref().is_none_or(|s| s.shard.index() == 0) {
            self.records.era_dates_read_leniently += replaced.len() as u64;
        }
        let with_dates: Vec<&str>;
        let values: &[&str] = if replaced.is_empty() {
            row
        } else {
            let mut owned = row.to_vec();
            for (c, date) in &replaced {
                owned[*c] = date;
            }
            with_dates = owned;
            &with_dates
        };
        let id = values[self.binding.id].trim();
        let problem = if id.is_empty() {
            Some("the record id is empty".to_owned())
        } else if !self.seen.insert(id_hash(id)) {
            Some(format!("record id '{id}' appears more than once"))
        } else {
            None
        };
        if let Some(reason) = problem {
            if self.counted_elsewhere() {
                return Ok(());
            }
            let id = id.to_owned();
            let field = self.id_column.clone();
            let message = format!("{field}: {reason}");
            let values = values.iter().map(|&v| v.to_owned()).collect();
            return self.bad(line, &id, &field, reason, values, Some(message));
        }
        let mut first_key = None;
        if let Some(filter) = &mut self.shard {
            // Only the first step's key is computed for every row: the rows of other shards
            // are dropped before anything else is normalised, tokenized or encoded.
            let key = self.key_encoders.first().map(|encoder| {
                let mut raw = Vec::new();
                self.binding.key_values(0, |c| values[c], &mut raw);
                let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
                encoder.encode(&raw)
            });
            let owner = match &key {
                Some(Ok(key)) => filter.assigner.shard_of(key),
                _ => 0,
            };
            if owner != filter.shard.index() {
                filter.elsewhere += 1;
                filter.rows_elsewhere += 1;
                return Ok(());
            }
            first_key = key;
        }
        let mut pending = PendingRow::new(line, values);
        pending.first_key = first_key;
        self.pending.push(pending);
        if self.pending.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether a row rejected before its shard is known (a wrong field count, invalid UTF-8,
    /// an empty or repeated id) is withheld silently here: it is listed and counted by shard
    /// 0 only. Under `abort` it stops every shard, as it stops an unsharded run.
    fn counted_elsewhere(&mut self) -> bool {
        match &mut self.shard {
            Some(filter)
                if filter.shard.index() != 0
                    && self.options.invalid_rows == InvalidRows::Reject =>
            {
                filter.rows_elsewhere += 1;
                true
            }
            _ => false,
        }
    }

    /// Takes a row the source could not read as text (`field`: the column at fault, empty for
    /// the whole row), with its values as read (invalid UTF-8 replaced by U+FFFD).
    ///
    /// # Errors
    /// Under `abort`, the first bad row so far.
    pub fn push_unreadable(
        &mut self,
        line: u64,
        field: &str,
        reason: String,
        values: Vec<String>,
    ) -> Result<(), PartyError> {
        self.records.rows_read += 1;
        if self.counted_elsewhere() {
            return Ok(());
        }
        let id = values.get(self.binding.id).cloned().unwrap_or_default();
        self.bad(line, &id, field, reason, values, None)
    }

    /// The records, once every row was pushed.
    ///
    /// # Errors
    /// Under `abort`, a bad row still in the batch; no records left (no data rows, or all
    /// rejected).
    pub fn finish(mut self) -> Result<PartyRecords, PartyError> {
        self.flush()?;
        self.records.fields.shrink_to_fit();
        // In input order (a row waiting in the batch is rejected after a later row whose id
        // repeated).
        self.rejected.sort_by_key(|r| r.line);
        if let Some(filter) = &self.shard {
            self.records.shard = Some(ShardSelection {
                kept: self.records.ids.len(),
                total: usize::try_from(self.records.rows_read).unwrap_or(usize::MAX),
                elsewhere: usize::try_from(filter.elsewhere).unwrap_or(usize::MAX),
            });
            self.records.rows_read -= filter.rows_elsewhere;
        }
        let shown = self.source.shown().to_owned();
        let other_shards_have_rows = self.shard.as_ref().is_some_and(|s| s.elsewhere > 0);
        let an_empty_shard =
            self.own_shard_file && self.shard.is_some() && self.records.rows_read == 0;
        if self.records.ids.is_empty() && !other_shards_have_rows && !an_empty_shard {
            let reason = match self.rejected.first() {
                Some(first) => format!(
                    "no records to link: all {} data rows were rejected (the first on {} {}: \
                     {}{}); nothing was sent",
                    self.rejected.len(),
                    self.source.row_word(),
                    first.line,
                    if first.field.is_empty() {
                        String::new()
                    } else {
                        format!("field '{}': ", first.field)
                    },
                    first.reason
                ),
                None if matches!(self.source, RecordSource::Query(_)) => {
                    "the query returned no rows; refusing to link an empty set (a session would \
                     still tell the peer this side's set size)"
                        .to_owned()
                }
                None => "no records after the header row; refusing to link an empty set (a \
                         session would still tell the peer this side's set size)"
                    .to_owned(),
            };
            return Err(PartyError::Input {
                context: shown,
                reason,
            });
        }
        if self.options.invalid_rows == InvalidRows::Reject {
            self.records.rejects = Some(Rejects {
                file: shown,
                header: self.header,
                rows: self.rejected,
            });
        }
        Ok(self.records)
    }

    /// A bad row: under `abort`, the error (after the rows before it, so the first bad row in
    /// input order wins); under `reject`, listed. `message` is the abort error after the
    /// row's place (`None`: `[field 'f': ]reason`).
    fn bad(
        &mut self,
        line: u64,
        id: &str,
        field: &str,
        reason: String,
        values: Vec<String>,
        message: Option<String>,
    ) -> Result<(), PartyError> {
        if self.options.invalid_rows == InvalidRows::Abort {
            self.flush()?;
            let context = self.source.at(line, &self.id_column, id);
            let reason = match message {
                Some(message) => message,
                None if field.is_empty() => reason,
                None => format!("field '{field}': {reason}"),
            };
            return Err(PartyError::Input { context, reason });
        }
        self.rejected.push(RejectedRow {
            line,
            field: field.to_owned(),
            reason,
            values,
        });
        Ok(())
    }

    /// A row the tokenizer or encoder rejected.
    fn bad_value(&mut self, row: PendingRow, error: &EncodingError) -> Result<(), PartyError> {
        let id = row.value(self.binding.id).trim().to_owned();
        let message = error.to_string();
        let (field, reason) = match error {
            EncodingError::InvalidValue { field, reason } => (field.clone(), reason.clone()),
            other => (String::new(), other.to_string()),
        };
        self.bad(row.line, &id, &field, reason, row.values(), Some(message))
    }

    /// Tokenizes, encodes and keys the waiting rows, and keeps the good ones.
    fn flush(&mut self) -> Result<(), PartyError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.pending);
        let binding = &self.binding;

        let mut fields: Vec<Vec<FieldTokens>> = Vec::new();
        if let Some(tokenizer) = self.tokenizer {
            let outcomes = tokenize_rows(tokenizer, &rows, binding);
            let mut kept = Vec::with_capacity(rows.len());
            for (row, outcome) in rows.into_iter().zip(outcomes) {
                match outcome {
                    Ok(tokens) => {
                        fields.push(tokens);
                        kept.push(row);
                    }
                    Err(error) => self.bad_value(row, &error)?,
                }
            }
            rows = kept;
        }

        let mut clks = Vec::new();
        if let Some(encoder) = self.encoder {
            let first = self.records.ids.len() as u64;
            let outcomes = encode_rows(encoder, &rows, &self.binding, first, &mut clks);
            if outcomes.iter().any(Result::is_err) {
                let mut kept = Vec::with_capacity(rows.len());
                let mut kept_fields = Vec::with_capacity(fields.len());
                let mut tokens_of = std::mem::take(&mut fields).into_iter();
                for (row, outcome) in rows.into_iter().zip(outcomes) {
                    let tokens = tokens_of.next();
                    match outcome {
                        Ok(()) => {
                            kept.push(row);
                            kept_fields.extend(tokens);
                        }
                        Err(error) => self.bad_value(row, &error)?,
                    }
                }
                rows = kept;
                fields = kept_fields;
                // Encoded again with the kept rows' own positions, so they get the CLKs the
                // input without the bad rows would give.
                let again = encode_rows(encoder, &rows, &self.binding, first, &mut clks);
                if let Some((row, Err(error))) = rows.iter().zip(&again).find(|(_, r)| r.is_err()) {
                    let id = row.value(self.binding.id).trim();
                    return Err(PartyError::Input {
                        context: self.source.at(row.line, &self.id_column, id),
                        reason: error.to_string(),
                    });
                }
            }
        }

        // Every step's key of a row in one parallel pass: one fork-join per batch, not one
        // per step (each costs a wake-up of the pool's threads).
        let (encoders, binding) = (&self.key_encoders, &self.binding);
        let keys: Vec<Vec<Result<Vec<u8>, Keyless>>> = rows
            .par_iter_mut()
            .map_init(Vec::new, |values, row| {
                let mut first = row.first_key.take();
                let row = &*row;
                (0..encoders.len())
                    .map(|k| {
                        if k == 0
                            && let Some(key) = first.take()
                        {
                            return key;
                        }
                        binding.key_values(k, |c| row.value(c), values);
                        let values: Vec<&str> = values.iter().map(String::as_str).collect();
                        encoders[k].encode(&values)
                    })
                    .collect()
            })
            .collect();
        for column in &mut self.records.match_keys {
            column.keys.reserve(rows.len());
        }
        for (row_keys, row) in keys.into_iter().zip(&rows) {
            for (column, key) in self.records.match_keys.iter_mut().zip(row_keys) {
                column.push(key, row.line);
            }
        }
        self.records.clks.extend_from_slice(&clks);
        for tokens in &fields {
            self.records.fields.push(tokens);
        }
        drop(fields);
        let id = self.binding.id;
        self.records
            .ids
            .extend(rows.iter().map(|row| row.value(id).trim().to_owned()));
        self.pending = Vec::with_capacity(BATCH_ROWS);
        Ok(())
    }
}

/// Which shard each row of an input belongs to, as a sharded [`RecordsBuilder`] assigns it:
/// one pass over a file can then write each shard's rows to its own file (`blindlink split`),
/// and each shard's run reads only its own rows.
///
/// A row goes to the shard of its first match key ([`ShardAssigner`], after era dates are
/// read as the config says); a row without that key, with an empty id, or with a field count
/// other than the header's goes to shard 0, whose build reports it as an unsharded build
/// would. A row whose id repeats an earlier row's goes where that row went, so that the same
/// build sees both and rejects the later one.
#[derive(Debug)]
pub struct RowSharder {
    fields: usize,
    id: usize,
    binding: ColumnBinding,
    encoder: Option<MatchKeyEncoder>,
    assigner: ShardAssigner,
    lenient_dates: Vec<usize>,
    shard_of_id: HashMap<u128, u32>,
    date: String,
}

impl RowSharder {
    /// A sharder of rows of `header` from `source`, for the match keys of `spec` (its schema,
    /// encoder and tokenizer are not used).
    ///
    /// # Errors
    /// As [`RecordsBuilder::new`].
    pub fn new(
        source: &RecordSource,
        header: &[&str],
        spec: RecordsSpec<'_>,
        assigner: ShardAssigner,
    ) -> Result<Self, PartyError> {
        let binding = ColumnBinding::bind(
            &source.header_at(),
            header,
            spec.columns,
            spec.schema,
            false,
        )?;
        let encoder = spec
            .columns
            .match_keys
            .first()
            .map(MatchKeyEncoder::new)
            .transpose()?;
        let lenient_dates = match spec.options.era_dates {
            EraDates::Strict => Vec::new(),
            EraDates::Lenient => binding.date_sources.iter().copied().collect(),
        };
        Ok(Self {
            fields: header.len(),
            id: binding.id,
            binding,
            encoder,
            assigner,
            lenient_dates,
            shard_of_id: HashMap::new(),
            date: String::new(),
        })
    }

    /// The shard of `row` (see the type's docs).
    pub fn shard_of(&mut self, row: &[&str]) -> u32 {
        if row.len() != self.fields {
            return 0;
        }
        let id = row[self.id].trim();
        if id.is_empty() {
            return 0;
        }
        let id = id_hash(id);
        if let Some(&shard) = self.shard_of_id.get(&id) {
            return shard;
        }
        let replaced = lenient_replacements(row, &self.lenient_dates, &mut self.date);
        let mut values = row.to_vec();
        for (c, date) in &replaced {
            values[*c] = date;
        }
        let shard = match &self.encoder {
            Some(encoder) => {
                let mut raw = Vec::new();
                self.binding.key_values(0, |c| values[c], &mut raw);
                let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
                encoder
                    .encode(&raw)
                    .map_or(0, |key| self.assigner.shard_of(&key))
            }
            None => 0,
        };
        self.shard_of_id.insert(id, shard);
        shard
    }
}

/// Encodes `rows` into `clks` (resized), record `i` at position `first + i`, returning each
/// row's outcome.
fn encode_rows(
    encoder: &ClkEncoder,
    rows: &[PendingRow],
    binding: &ColumnBinding,
    first: u64,
    clks: &mut Vec<u8>,
) -> Vec<Result<(), EncodingError>> {
    let clk_bytes = encoder.bytes_per_clk();
    clks.clear();
    clks.resize(rows.len() * clk_bytes, 0);
    clks.par_chunks_mut(clk_bytes.max(1))
        .zip(rows.par_iter())
        .enumerate()
        .map_init(
            || (EncoderScratch::default(), Vec::<String>::new()),
            |(scratch, values), (i, (out, row))| {
                binding.schema_values(|c| row.value(c), values);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                encoder.encode(&values, first + i as u64, scratch, out)
            },
        )
        .collect()
}

/// Normalises every row's compared fields, returning each row's fields or its error: each
/// field's normalised text as its one entry, none when empty (the form
/// [`FieldTokenColumn::push_values`](blindlink_protocol::FieldTokenColumn::push_values)
/// writes). A row is checked as tokenising it would check it ([`FieldTokenizer::texts`]); the
/// tokens are made when a mode needs them ([`PartyRecords::party_data`]).
fn tokenize_rows(
    tokenizer: &FieldTokenizer,
    rows: &[PendingRow],
    binding: &ColumnBinding,
) -> Vec<Result<Vec<FieldTokens>, EncodingError>> {
    rows.par_iter()
        .map_init(
            || (FieldTokenScratch::default(), Vec::<String>::new()),
            |(scratch, values), row| {
                binding.schema_values(|c| row.value(c), values);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                let mut fields = Vec::new();
                tokenizer.texts(&values, scratch, |_, text| {
                    fields.push(if text.is_empty() {
                        Vec::new()
                    } else {
                        vec![text.as_bytes().to_vec()]
                    });
                })?;
                Ok(fields)
            },
        )
        .collect()
}

/// The era dates of `row`'s columns `lenient_dates` that are read leniently (outside their
/// era), with the Gregorian date each denotes (`date` is the scratch buffer).
fn lenient_replacements(
    row: &[&str],
    lenient_dates: &[usize],
    date: &mut String,
) -> Vec<(usize, String)> {
    let mut replaced = Vec::new();
    for &c in lenient_dates {
        if normalise_date_with(row[c], NumericOrder::YearFirst, EraReading::Lenient, date)
            == Ok(true)
        {
            replaced.push((c, date.clone()));
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use blindlink_encoding::LinkageSecret;

    use super::*;
    use crate::{KeyColumn, MatchKeySpec};

    const SCHEMA: &str = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"name\"\nnormalise = [\"nfkc\", \"strip-whitespace\"]\n\
        tokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n\
        [[field]]\ncolumn = \"dob\"\nnormalise = [\"date\"]\ntokens = { kind = \"exact\" }\n\
        bits_per_token = 4\nmissing = \"reject\"\n";

    /// What a mode computes: CLKs (`fuzzy`, `clk-exchange`), field tokens (`validate`,
    /// `fuzzy`), or only ids and keys (`exact`, `cardinality`).
    #[derive(Clone, Copy)]
    struct Wants {
        clks: bool,
        tokens: bool,
    }

    const KEYS_ONLY: Wants = Wants {
        clks: false,
        tokens: false,
    };
    const FUZZY: Wants = Wants {
        clks: true,
        tokens: true,
    };

    /// Builds records from `rows` (`id,mn,name,dob`; line = index + 2) of `source` with a
    /// `my-number` key on `mn`, under `options`; a summary of what was kept, or the error.
    fn build(
        source: RecordSource,
        rows: &[&str],
        wants: Wants,
        options: InputOptions,
    ) -> Result<PartyRecords, String> {
        build_in(source, rows, wants, options, None)
    }

    /// [`build`], keeping only `shard`'s rows if given.
    fn build_in(
        source: RecordSource,
        rows: &[&str],
        wants: Wants,
        options: InputOptions,
        shard: Option<(Shard, &ShardAssigner)>,
    ) -> Result<PartyRecords, String> {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let secret = LinkageSecret::from_bytes(b"builder test key".to_vec()).unwrap();
        let encoder = ClkEncoder::new(&schema, &secret).unwrap();
        let tokenizer = FieldTokenizer::new(&schema, &secret).unwrap();
        let keys = mn_key();
        let none = BTreeMap::new();
        let spec = RecordsSpec {
            columns: InputColumns {
                id_column: "id",
                match_keys: &keys,
                schema_columns: &none,
                combined_columns: &BTreeMap::new(),
            },
            schema: &schema,
            encoder: wants.clks.then_some(&encoder),
            tokenizer: wants.tokens.then_some(&tokenizer),
            options,
            shard,
            own_shard_file: false,
        };
        let mut builder = RecordsBuilder::new(source, &["id", "mn", "name", "dob"], spec)
            .map_err(|e| e.to_string())?;
        for (i, row) in rows.iter().enumerate() {
            let values: Vec<&str> = row.split(',').collect();
            builder
                .push(i as u64 + 2, &values)
                .map_err(|e| e.to_string())?;
        }
        builder.finish().map_err(|e| e.to_string())
    }

    /// A one-line summary of `records` (or the error).
    fn summary(records: Result<PartyRecords, String>) -> String {
        let r = match records {
            Ok(r) => r,
            Err(e) => return e,
        };
        let mut text = format!(
            "ids {:?}; read {}; clks {}; fields {}; mn keyless {}",
            r.ids,
            r.rows_read,
            r.clks.len() / r.clk_bytes.max(1),
            r.fields.len(),
            r.match_keys[0].keyless,
        );
        for row in &r.match_keys[0].keyless_examples {
            text.push_str(&format!(" [{} {} {}]", row.line, row.column, row.reason));
        }
        if let Some(rejects) = &r.rejects {
            text.push_str("; rejected");
            for row in &rejects.rows {
                text.push_str(&format!(" [{} {}: {}]", row.line, row.field, row.reason));
            }
        }
        text
    }

    fn check(
        source: RecordSource,
        rows: &[&str],
        wants: Wants,
        invalid_rows: InvalidRows,
        expected: &str,
    ) -> Option<String> {
        let options = InputOptions {
            invalid_rows,
            era_dates: EraDates::Strict,
        };
        let got = summary(build(source, rows, wants, options));
        (got != expected).then(|| format!("{rows:?}:\n  got      {got}\n  expected {expected}"))
    }

    fn csv() -> RecordSource {
        RecordSource::Csv("in.csv".into())
    }

    fn query() -> RecordSource {
        RecordSource::Query("postgres table \"people\"".into())
    }

    const GOOD: &str = "a,123456789018,山田太郎,1985-04-03";
    const NO_KEY: &str = "b,,山田花子,1990-01-01";
    const BAD_DOB: &str = "c,123456789018,田中,2000-02-30";

    #[test]
    fn rows_are_checked_in_order_and_bad_ones_named_where_they_are() {
        use InvalidRows::{Abort, Reject};
        let feb30 = "day 30 does not exist in february 2000, which has 29 days";
        let wrong: Vec<String> = [
            check(
                csv(),
                &[GOOD, NO_KEY],
                KEYS_ONLY,
                Abort,
                "ids [\"a\", \"b\"]; read 2; clks 0; fields 0; mn keyless 1 [3 mn the value is \
                 missing]",
            ),
            check(
                csv(),
                &[GOOD, NO_KEY],
                FUZZY,
                Abort,
                "ids [\"a\", \"b\"]; read 2; clks 2; fields 2; mn keyless 1 [3 mn the value is \
                 missing]",
            ),
            // The date is never read without a schema to encode: a keys-only mode keeps it.
            check(
                csv(),
                &[GOOD, BAD_DOB],
                KEYS_ONLY,
                Abort,
                "ids [\"a\", \"c\"]; read 2; clks 0; fields 0; mn keyless 0",
            ),
            check(
                csv(),
                &[GOOD, BAD_DOB],
                FUZZY,
                Abort,
                &format!("in.csv:3: field 'dob': {feb30}"),
            ),
            check(
                query(),
                &[GOOD, BAD_DOB],
                FUZZY,
                Abort,
                &format!("postgres table \"people\" row 3 (id 'c'): field 'dob': {feb30}"),
            ),
            // The first bad row in input order wins, whichever check finds it: the bad date
            // waits in the batch when the repeated id is seen.
            check(
                csv(),
                &[GOOD, BAD_DOB, "a,1,x,2000-01-01"],
                FUZZY,
                Abort,
                &format!("in.csv:3: field 'dob': {feb30}"),
            ),
            check(
                query(),
                &[GOOD, "a,1,x,2000-01-01"],
                KEYS_ONLY,
                Abort,
                "postgres table \"people\" row 3 (id 'a'): id: record id 'a' appears more than \
                 once",
            ),
            check(
                csv(),
                &[GOOD, " ,1,x,2000-01-01"],
                KEYS_ONLY,
                Abort,
                "in.csv:3: id: the record id is empty",
            ),
            check(
                csv(),
                &[GOOD, "d,1,x"],
                KEYS_ONLY,
                Abort,
                "in.csv:3: the row has 3 fields but the header has 4",
            ),
            check(
                csv(),
                &[GOOD, BAD_DOB, "a,1,x,2000-01-01", "d,1,x", NO_KEY],
                FUZZY,
                Reject,
                &format!(
                    "ids [\"a\", \"b\"]; read 5; clks 2; fields 2; mn keyless 1 [6 mn the value \
                     is missing]; rejected [3 dob: {feb30}] [4 id: record id 'a' appears more \
                     than once] [5 : the row has 3 fields but the header has 4]"
                ),
            ),
            check(
                csv(),
                &[BAD_DOB],
                FUZZY,
                Reject,
                &format!(
                    "in.csv: no records to link: all 1 data rows were rejected (the first on \
                     line 2: field 'dob': {feb30}); nothing was sent"
                ),
            ),
            check(
                query(),
                &[BAD_DOB],
                FUZZY,
                Reject,
                &format!(
                    "postgres table \"people\": no records to link: all 1 data rows were \
                     rejected (the first on row 2: field 'dob': {feb30}); nothing was sent"
                ),
            ),
            check(
                csv(),
                &[],
                KEYS_ONLY,
                Abort,
                "in.csv: no records after the header row; refusing to link an empty set (a \
                 session would still tell the peer this side's set size)",
            ),
            check(
                query(),
                &[],
                KEYS_ONLY,
                Abort,
                "postgres table \"people\": the query returned no rows; refusing to link an \
                 empty set (a session would still tell the peer this side's set size)",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Rows `0..n` with good values (ids `r0`, `r1`, ...).
    fn many(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("r{i},123456789018,name{i},19{:02}-01-01", i % 100))
            .collect()
    }

    #[test]
    fn kept_rows_get_the_records_of_the_input_without_the_bad_rows_across_batches() {
        let rows = many(BATCH_ROWS + 300);
        let clean: Vec<&str> = rows.iter().map(String::as_str).collect();
        let mut dirty = clean.clone();
        // Bad rows in the first batch, at the boundary and in the second one.
        for at in [5, BATCH_ROWS, BATCH_ROWS + 200] {
            dirty.insert(at, BAD_DOB);
        }
        let options = |invalid_rows| InputOptions {
            invalid_rows,
            era_dates: EraDates::Strict,
        };
        let want = build(csv(), &clean, FUZZY, options(InvalidRows::Reject)).unwrap();
        let got = build(csv(), &dirty, FUZZY, options(InvalidRows::Reject)).unwrap();
        assert_eq!(got.ids, want.ids);
        assert!(
            got.clks == want.clks,
            "the kept rows' CLKs are the clean input's"
        );
        assert_eq!(got.fields, want.fields);
        assert_eq!(got.match_keys[0].keys, want.match_keys[0].keys);
        let lines: Vec<u64> = got.rejects.unwrap().rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [7, BATCH_ROWS as u64 + 2, BATCH_ROWS as u64 + 202]);

        // Under abort, a repeated id late in the second batch loses to the first bad row.
        let mut late = dirty.clone();
        late.push("r1,1,x,2000-01-01");
        let error = build(csv(), &late, FUZZY, options(InvalidRows::Abort)).unwrap_err();
        assert!(error.starts_with("in.csv:7: field 'dob': "), "{error}");
    }

    #[test]
    fn era_dates_outside_their_era_are_read_leniently_when_asked() {
        let rows = ["a,1,x,平成32年1月1日", "b,1,y,2000-01-01"];
        let options = InputOptions {
            invalid_rows: InvalidRows::Abort,
            era_dates: EraDates::Lenient,
        };
        let lenient = build(csv(), &rows, FUZZY, options).unwrap();
        assert_eq!(lenient.era_dates_read_leniently, 1);
        let renamed = build(csv(), &["a,1,x,2020-01-01", rows[1]], FUZZY, options).unwrap();
        assert!(lenient.clks == renamed.clks);
        let strict = InputOptions {
            era_dates: EraDates::Strict,
            ..options
        };
        assert_eq!(
            build(csv(), &rows, FUZZY, strict).unwrap_err(),
            "in.csv:2: field 'dob': 平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30"
        );
    }

    /// What a shard holds, as compared between the early filter and `retain_shard`.
    fn shard_summary(r: &PartyRecords) -> String {
        let rejected: Vec<u64> = r
            .rejects
            .as_ref()
            .map(|x| x.rows.iter().map(|row| row.line).collect())
            .unwrap_or_default();
        format!(
            "ids {:?}; keys {:?}; keyless {} {:?}; clks {:?}; fields {}; read {}; rejected \
             {rejected:?}; era {}",
            r.ids,
            r.match_keys[0].keys,
            r.match_keys[0].keyless,
            r.match_keys[0]
                .keyless_examples
                .iter()
                .map(|k| k.line)
                .collect::<Vec<_>>(),
            r.clks,
            r.fields.len(),
            r.rows_read,
            r.era_dates_read_leniently,
        )
    }

    /// The early shard filter keeps exactly the records `retain_shard` keeps from the whole
    /// input, and the shards' counts sum to the unsharded ones. Bad rows found before the
    /// shard is known (field count, repeated or empty id) are listed by shard 0 only, as
    /// `retain_shard` lists them; a value the tokenizer rejects is listed by the row's own
    /// shard (the others never tokenize it).
    #[test]
    fn the_shard_filter_keeps_what_retain_shard_keeps() {
        let mut rows = many(300);
        rows[7] = "r7,,name7,1907-01-01".to_owned(); // keyless: shard 0
        rows[8] = "r8,1,name8".to_owned(); // wrong field count
        rows[9] = "r1,123456789018,x,2000-01-01".to_owned(); // repeated id
        rows[10] = " ,123456789018,x,2000-01-01".to_owned(); // empty id
        rows[11] = "r11,123456789026,x,平成32年1月1日".to_owned(); // era date, lenient
        rows[12] = "r12,123456789034,x,2000-02-30".to_owned(); // bad date (tokenizer)
        // Distinct keys, so that the records spread over the shards.
        for (i, row) in rows.iter_mut().enumerate().skip(13) {
            *row = format!(
                "r{i},{},name{i},19{:02}-01-01",
                my_number(i as u64),
                i % 100
            );
        }
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let secret = LinkageSecret::from_bytes(b"builder test key".to_vec()).unwrap();
        let assigner = ShardAssigner::new(&secret, 3);
        for wants in [KEYS_ONLY, FUZZY] {
            let options = InputOptions {
                invalid_rows: InvalidRows::Reject,
                era_dates: EraDates::Lenient,
            };
            let whole = build(csv(), &rows, wants, options).unwrap();
            let mut sums = (0, 0, 0, 0);
            let mut kept_total = 0;
            for index in 0..3 {
                let shard = Shard::new(index, 3).unwrap();
                let mut want = whole.clone();
                let selection = crate::retain_shard(&mut want, shard, &assigner);
                let got = build_in(csv(), &rows, wants, options, Some((shard, &assigner))).unwrap();
                let got_selection = got.shard.unwrap();
                assert_eq!(got_selection.kept, selection.kept, "shard {index}");
                // The input's rows, in every shard, tokenizer rejects or not.
                assert_eq!(got_selection.total, selection.total, "shard {index}");
                assert_eq!(got_selection.total as u64, whole.rows_read, "shard {index}");
                let mut want = shard_summary(&want);
                if wants.tokens {
                    // Line 14 (r12's bad date) is listed by its own shard, with one more
                    // row read there and one fewer in shard 0.
                    let owner = u64::from(assigner.shard_of(&got_key(rows[12])));
                    if index == 0 && owner != 0 {
                        want = want.replace(", 14]", "]");
                    }
                    if index == owner && owner != 0 {
                        want = want.replace("rejected [", "rejected [14, ");
                    }
                }
                let got_text = shard_summary(&got);
                if !wants.tokens {
                    assert_eq!(got_text, want, "shard {index}");
                } else {
                    // Compare everything but the counts of rows read, checked by their sum.
                    let strip = |s: &str| s.split("; read").next().unwrap_or("").to_owned();
                    assert_eq!(strip(&got_text), strip(&want), "shard {index}");
                }
                // The rows `RowSharder` sends to this shard, built alone, give its records.
                let mut sharder = row_sharder(&assigner, options);
                let part: Vec<&str> = rows
                    .iter()
                    .copied()
                    .filter(|row| {
                        let values: Vec<&str> = row.split(',').collect();
                        u64::from(sharder.shard_of(&values)) == index
                    })
                    .collect();
                let alone =
                    build_in(csv(), &part, wants, options, Some((shard, &assigner))).unwrap();
                assert_eq!(alone.ids, got.ids, "shard {index}");
                assert_eq!(alone.match_keys[0].keys, got.match_keys[0].keys);
                assert_eq!(alone.shard.unwrap().total, part.len());
                kept_total += got.ids.len();
                sums.0 += got.rows_read;
                sums.1 += got.match_keys[0].keyless;
                sums.2 += got.rejects.as_ref().map_or(0, |r| r.rows.len());
                sums.3 += got.era_dates_read_leniently;
            }
            assert_eq!(kept_total, whole.ids.len());
            let rejected = whole.rejects.as_ref().map_or(0, |r| r.rows.len());
            assert_eq!(
                sums,
                (
                    whole.rows_read,
                    whole.match_keys[0].keyless,
                    rejected,
                    whole.era_dates_read_leniently
                )
            );
        }
    }

    /// A shard's own split file with no data row is an empty shard, not an empty input; the
    /// same header-only input is refused when it is not one, sharded or not.
    #[test]
    fn an_empty_own_shard_file_is_an_empty_shard() {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let secret = LinkageSecret::from_bytes(b"builder test key".to_vec()).unwrap();
        let assigner = ShardAssigner::new(&secret, 4);
        let keys = mn_key();
        let none = BTreeMap::new();
        let shard = Shard::new(2, 4).unwrap();
        let check =
            |sharded: bool, own_shard_file: bool, expected: Result<(usize, u64), String>| {
                let spec = RecordsSpec {
                    columns: InputColumns {
                        id_column: "id",
                        match_keys: &keys,
                        schema_columns: &none,
                        combined_columns: &BTreeMap::new(),
                    },
                    schema: &schema,
                    encoder: None,
                    tokenizer: None,
                    options: InputOptions::default(),
                    shard: sharded.then_some((shard, &assigner)),
                    own_shard_file,
                };
                let got = RecordsBuilder::new(csv(), &["id", "mn", "name", "dob"], spec)
                    .unwrap()
                    .finish()
                    .map(|r| (r.ids.len(), r.rows_read))
                    .map_err(|e| e.to_string());
                assert_eq!(
                    got, expected,
                    "sharded {sharded}, own shard file {own_shard_file}"
                );
            };
        let refused = "in.csv: no records after the header row; refusing to link an empty set (a \
                       session would still tell the peer this side's set size)"
            .to_owned();
        check(true, true, Ok((0, 0)));
        check(true, false, Err(refused.clone()));
        check(false, true, Err(refused.clone()));
        check(false, false, Err(refused));
    }

    /// The sharder of the test rows' `mn` key.
    fn row_sharder(assigner: &ShardAssigner, options: InputOptions) -> RowSharder {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let keys = mn_key();
        let none = BTreeMap::new();
        let spec = RecordsSpec {
            columns: InputColumns {
                id_column: "id",
                match_keys: &keys,
                schema_columns: &none,
                combined_columns: &BTreeMap::new(),
            },
            schema: &schema,
            encoder: None,
            tokenizer: None,
            options,
            shard: None,
            own_shard_file: false,
        };
        RowSharder::new(&csv(), &["id", "mn", "name", "dob"], spec, assigner.clone()).unwrap()
    }

    /// A valid 12-digit My Number (check digit computed) from `n`.
    fn my_number(n: u64) -> String {
        let body = format!("{:011}", 10_000_000_000 + n);
        let digits: Vec<u32> = body.chars().filter_map(|c| c.to_digit(10)).collect();
        // Weights 2..7 from the right, twice (the My Number check digit).
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, d)| d * (if i < 6 { i as u32 + 2 } else { i as u32 - 4 }))
            .sum();
        let check = match sum % 11 {
            0 | 1 => 0,
            r => 11 - r,
        };
        format!("{body}{check}")
    }

    /// The test rows' one match key: `mn`, a My Number.
    fn mn_key() -> [MatchKeySpec; 1] {
        [MatchKeySpec {
            name: "mn".into(),
            columns: vec![KeyColumn {
                column: "mn".into(),
                normalise: vec!["my-number".into()],
            }],
        }]
    }

    /// The `mn` key of a test row.
    fn got_key(row: &str) -> Vec<u8> {
        let keys = mn_key();
        let encoder = MatchKeyEncoder::new(&keys[0]).unwrap();
        encoder.encode(&[row.split(',').nth(1).unwrap()]).unwrap()
    }
}
