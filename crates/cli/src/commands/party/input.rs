//! Reads a party's input CSV into what a linkage session needs: local record ids, the
//! normalised match key of every cascade step, and the CLK of every record.
//!
//! Match keys: each column (or combined column, several CSV columns joined by a space) is
//! normalised with its step's pipeline and the values are joined length-prefixed (so `ab|c`
//! and `a|bc` differ). A record whose key value is missing or that
//! normalisation rejects (a My Number with a bad check digit, an impossible date) has no key for
//! that step: it can still link by a later step. Such rows are not dropped silently: they are
//! counted per step and the first few are listed with their line in `report.txt`.
//!
//! CLKs: every schema column is encoded with the shared [`ClkEncoder`]; a row the encoder
//! rejects (a `missing = "reject"` field, say) stops the run with its file, line, field and
//! reason, as `blindlink encode` does.
//!
//! Bad rows ([`InputOptions::invalid_rows`]): a row that cannot be used — not valid UTF-8, a
//! field count other than the header's, an empty or repeated record id, a value the encoder
//! rejects — stops the run under `abort` (the default), naming file, line, field and reason.
//! Under `reject` it is withheld from the session (the peer never sees it, nor learns how many
//! there were) and listed in [`PartyRecords::rejects`]; the rows kept are encoded exactly as
//! the same file without the bad rows would be, so they link the same. A repeated id rejects
//! the later rows and keeps the first.
//!
//! Era dates ([`InputOptions::era_dates`]): under `lenient`, a value of a column that a date
//! step normalises (in the schema or a match key) and that is a Japanese era date outside its
//! era (`平成32年1月1日`) is replaced by the Gregorian date it denotes (`2020-01-01`) before
//! anything else reads it, and counted in [`PartyRecords::era_dates_read_leniently`].
//!
//! A file with no data rows left (empty, header only, or every row rejected) is refused: a
//! session over zero records would still tell the peer this side's set size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use blindlink_encoding::normalise::date::{EraReading, NumericOrder, normalise_date_with};
use blindlink_encoding::{
    ClkEncoder, EncoderScratch, EncodingError, FieldTokenScratch, FieldTokenizer, FieldTokens,
    SchemaDocument,
};
use blindlink_party::{ColumnBinding, InputColumns, MatchKeyEncoder};
use rayon::prelude::*;

use super::config::{EraDates, InvalidRows, MatchKeySpec};

/// What [`read_party_records`] does with bad rows and era dates (`[input] invalid_rows` and
/// `era_dates`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputOptions {
    /// Abort on the first bad row, or withhold and list them.
    pub invalid_rows: InvalidRows,
    /// Strict or lenient reading of era dates outside their era.
    pub era_dates: EraDates,
}

pub use blindlink_party::{
    KeylessRow, LISTED_KEYLESS_ROWS, MatchKeyColumn, PartyRecords, RejectedRow, Rejects,
};

/// Reads `csv_path`: `id_column`, the `match_keys` columns and the schema's columns (renamed
/// through `schema_columns`, or made of several CSV columns joined by a space through
/// `combined_columns`), and encodes the CLKs with `encoder` and the field tokens with
/// `tokenizer` (on the current rayon pool; a mode wants either or both).
/// Bad rows and era dates are handled as `options` says (see the module docs).
///
/// # Errors
/// The file cannot be read, is empty or has no data rows left, a column is missing or
/// repeated, or (under `abort`) a row is bad: an id empty or repeated, invalid UTF-8, a wrong
/// field count, a value the encoder rejects; each names the file and line.
#[allow(clippy::too_many_arguments)]
pub fn read_party_records(
    csv_path: &Path,
    id_column: &str,
    match_keys: &[MatchKeySpec],
    schema: &SchemaDocument,
    schema_columns: &BTreeMap<String, String>,
    combined_columns: &BTreeMap<String, Vec<String>>,
    encoder: Option<&ClkEncoder>,
    tokenizer: Option<&FieldTokenizer>,
    options: InputOptions,
) -> anyhow::Result<PartyRecords> {
    let shown = csv_path.display().to_string();
    let file = std::fs::File::open(csv_path).with_context(|| format!("cannot read {shown}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::new(file));
    let header = reader
        .byte_headers()
        .with_context(|| format!("{shown}:1: cannot read the header row"))?
        .clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        bail!("{shown}: the file is empty (a header row naming the columns is required)");
    }
    let header = csv::StringRecord::from_byte_record(header).map_err(|e| {
        anyhow::anyhow!(
            "{shown}:1: the header row is not valid UTF-8 (column {})",
            e.utf8_error().field() + 1
        )
    })?;
    let header_fields: Vec<&str> = header.iter().collect();
    let binding = ColumnBinding::bind(
        &shown,
        &header_fields,
        InputColumns {
            id_column,
            match_keys,
            schema_columns,
            combined_columns,
        },
        schema,
        encoder.is_some() || tokenizer.is_some(),
    )?;
    let key_encoders = match_keys
        .iter()
        .map(MatchKeyEncoder::new)
        .collect::<Result<Vec<_>, _>>()?;
    let id_index = binding.id;
    let mut date_sources = binding.date_sources.clone();
    if options.era_dates == EraDates::Strict {
        date_sources.clear();
    }

    let mut bad = BadRows {
        shown: &shown,
        options,
        rows: Vec::new(),
        first: None,
    };
    let mut rows: Vec<csv::StringRecord> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut era_dates_read_leniently = 0;
    let mut rows_read = 0;
    let mut date = String::new();
    for row in reader.byte_records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            anyhow::anyhow!("{shown}:{line}: cannot read the row: {e}")
        })?;
        rows_read += 1;
        let line = row.position().map_or(rows_read + 1, csv::Position::line);
        if row.len() != header.len() {
            let reason = format!(
                "the row has {} fields but the header has {}",
                row.len(),
                header.len()
            );
            bad.reject(line, "", reason, &row, String::new());
            continue;
        }
        let row = match csv::StringRecord::from_byte_record(row) {
            Ok(row) => row,
            Err(e) => {
                let field = header.get(e.utf8_error().field()).unwrap_or("").to_owned();
                let row = e.into_byte_record();
                let reason = "the value is not valid UTF-8".to_owned();
                bad.reject(line, &field, reason, &row, String::new());
                continue;
            }
        };
        let row = if date_sources.is_empty() {
            row
        } else {
            let (row, read) = read_era_dates_leniently(row, &date_sources, &mut date);
            era_dates_read_leniently += read;
            row
        };
        rows.push(row);
        lines.push(line);
    }

    // Ids: an empty or repeated id is a bad row (the first of a repeated id is kept).
    let mut seen = std::collections::HashMap::with_capacity(rows.len());
    let mut keep = vec![true; rows.len()];
    for (i, row) in rows.iter().enumerate() {
        let line = lines[i];
        let id = row.get(id_index).unwrap_or("").trim();
        let problem = if id.is_empty() {
            Some("the record id is empty".to_owned())
        } else if seen.insert(id.to_owned(), line).is_some() {
            Some(format!("record id '{id}' appears more than once"))
        } else {
            None
        };
        if let Some(reason) = problem {
            let message = format!("{shown}:{line}: {id_column}: {reason}");
            bad.reject(line, id_column, reason, row.as_byte_record(), message);
            keep[i] = false;
        }
    }
    drop(seen);
    retain_rows(&mut rows, &mut lines, &keep);

    // Field tokens first: a row the tokenizer rejects (the encoder's own normalisation) is a
    // bad row whether or not this mode also encodes CLKs.
    let mut fields: Vec<Vec<FieldTokens>> = Vec::new();
    if let Some(tokenizer) = tokenizer {
        let outcomes = tokenize_rows(tokenizer, &rows, &binding);
        let mut keep = vec![true; rows.len()];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(tokens) => fields.push(tokens),
                Err(error) => {
                    let line = lines[i];
                    let message = format!("{shown}:{line}: {error}");
                    let (field, reason) = match &error {
                        EncodingError::InvalidValue { field, reason } => {
                            (field.clone(), reason.clone())
                        }
                        other => (String::new(), other.to_string()),
                    };
                    bad.reject(line, &field, reason, rows[i].as_byte_record(), message);
                    keep[i] = false;
                }
            }
        }
        bad.abort_on_the_first()?;
        retain_rows(&mut rows, &mut lines, &keep);
    }

    let clk_bytes = encoder.map_or(0, ClkEncoder::bytes_per_clk);
    let mut clks = Vec::new();
    if let Some(encoder) = encoder {
        let outcomes = encode_rows(encoder, &rows, &binding, &mut clks);
        if outcomes.iter().any(Result::is_err) {
            let mut keep = vec![true; rows.len()];
            for (i, outcome) in outcomes.iter().enumerate() {
                let Err(error) = outcome else { continue };
                let line = lines[i];
                let message = format!("{shown}:{line}: {error}");
                let (field, reason) = match error {
                    EncodingError::InvalidValue { field, reason } => {
                        (field.clone(), reason.clone())
                    }
                    other => (String::new(), other.to_string()),
                };
                bad.reject(line, &field, reason, rows[i].as_byte_record(), message);
                keep[i] = false;
            }
            bad.abort_on_the_first()?;
            if !fields.is_empty() {
                let mut i = 0;
                fields.retain(|_| {
                    i += 1;
                    keep[i - 1]
                });
            }
            retain_rows(&mut rows, &mut lines, &keep);
            // Encoded again with the kept rows' own positions (randomised hardening is seeded
            // by position), so they get the CLKs the file without the bad rows would give.
            let again = encode_rows(encoder, &rows, &binding, &mut clks);
            if let Some((i, Err(error))) = again.iter().enumerate().find(|(_, r)| r.is_err()) {
                bail!("{shown}:{}: {error}", lines[i]);
            }
        }
    }

    bad.abort_on_the_first()?;
    let mut rejected = bad.rows;
    rejected.sort_by_key(|r| r.line);
    if rows.is_empty() {
        if let Some(first) = rejected.first() {
            bail!(
                "{shown}: no records to link: all {} data rows were rejected (the first on \
                 line {}: {}{}); nothing was sent",
                rejected.len(),
                first.line,
                if first.field.is_empty() {
                    String::new()
                } else {
                    format!("field '{}': ", first.field)
                },
                first.reason
            );
        }
        bail!(
            "{shown}: no records after the header row; refusing to link an empty set (a session \
             would still tell the peer this side's set size)"
        );
    }

    let mut records = PartyRecords {
        clk_bytes,
        clks,
        fields,
        rows_read,
        era_dates_read_leniently,
        rejects: (options.invalid_rows == InvalidRows::Reject).then(|| Rejects {
            file: shown.clone(),
            header: header.iter().map(str::to_owned).collect(),
            rows: rejected,
        }),
        ..PartyRecords::default()
    };
    records.ids = rows
        .iter()
        .map(|row| row.get(id_index).unwrap_or("").trim().to_owned())
        .collect();

    for (k, encoder) in key_encoders.iter().enumerate() {
        let results: Vec<Result<Vec<u8>, blindlink_party::Keyless>> = rows
            .par_iter()
            .map_init(Vec::new, |values, row| {
                binding.key_values(k, |c| row.get(c).unwrap_or(""), values);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                encoder.encode(&values)
            })
            .collect();
        let mut column = MatchKeyColumn::new(encoder.name());
        column.keys.reserve(rows.len());
        for (result, &line) in results.into_iter().zip(&lines) {
            column.push(result, line);
        }
        records.match_keys.push(column);
    }
    Ok(records)
}

/// Collects bad rows; under `abort`, [`BadRows::abort_on_the_first`] then fails with the
/// first in file order (whichever check found it).
struct BadRows<'a> {
    shown: &'a str,
    options: InputOptions,
    rows: Vec<RejectedRow>,
    /// Under `abort`: (line, error message) of the first bad row so far.
    first: Option<(u64, String)>,
}

impl BadRows<'_> {
    /// Records a bad row; `message` is the abort error (empty: `file:line: [field 'f': ]reason`).
    fn reject(
        &mut self,
        line: u64,
        field: &str,
        reason: String,
        row: &csv::ByteRecord,
        message: String,
    ) {
        if self.options.invalid_rows == InvalidRows::Abort {
            if self.first.as_ref().is_none_or(|(first, _)| line < *first) {
                let message = match (message.is_empty(), field.is_empty()) {
                    (false, _) => message,
                    (true, true) => format!("{}:{line}: {reason}", self.shown),
                    (true, false) => format!("{}:{line}: field '{field}': {reason}", self.shown),
                };
                self.first = Some((line, message));
            }
            return;
        }
        self.rows.push(RejectedRow {
            line,
            field: field.to_owned(),
            reason,
            values: row
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect(),
        });
    }

    /// Under `abort`, the first bad row found so far as the error.
    fn abort_on_the_first(&self) -> anyhow::Result<()> {
        match &self.first {
            Some((_, message)) => bail!("{message}"),
            None => Ok(()),
        }
    }
}

fn retain_rows(rows: &mut Vec<csv::StringRecord>, lines: &mut Vec<u64>, keep: &[bool]) {
    if keep.iter().all(|&k| k) {
        return;
    }
    let mut i = 0;
    rows.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    let mut i = 0;
    lines.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// Encodes every row into `clks` (resized), returning each row's outcome.
fn encode_rows(
    encoder: &ClkEncoder,
    rows: &[csv::StringRecord],
    binding: &ColumnBinding,
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
                binding.schema_values(|c| row.get(c).unwrap_or(""), values);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                encoder.encode(&values, i as u64, scratch, out)
            },
        )
        .collect()
}

/// Tokenizes every row's schema values, returning each row's field tokens or its error.
fn tokenize_rows(
    tokenizer: &FieldTokenizer,
    rows: &[csv::StringRecord],
    binding: &ColumnBinding,
) -> Vec<Result<Vec<FieldTokens>, EncodingError>> {
    rows.par_iter()
        .map_init(
            || (FieldTokenScratch::default(), Vec::<String>::new()),
            |(scratch, values), row| {
                binding.schema_values(|c| row.get(c).unwrap_or(""), values);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                let mut fields = Vec::new();
                tokenizer.tokens(&values, scratch, &mut fields)?;
                Ok(fields)
            },
        )
        .collect()
}

pub(crate) use blindlink_party::has_date_step;

/// `row` with each value of `columns` that is an era date outside its era replaced by the
/// Gregorian date it denotes, and how many were.
fn read_era_dates_leniently(
    row: csv::StringRecord,
    columns: &BTreeSet<usize>,
    date: &mut String,
) -> (csv::StringRecord, u64) {
    let mut replaced: Vec<(usize, String)> = Vec::new();
    for &c in columns {
        if let Some(value) = row.get(c)
            && normalise_date_with(value, NumericOrder::YearFirst, EraReading::Lenient, date)
                == Ok(true)
        {
            replaced.push((c, date.clone()));
        }
    }
    if replaced.is_empty() {
        return (row, 0);
    }
    let mut out = csv::StringRecord::with_capacity(row.as_slice().len(), row.len());
    for (i, value) in row.iter().enumerate() {
        match replaced.iter().find(|(c, _)| *c == i) {
            Some((_, date)) => out.push_field(date),
            None => out.push_field(value),
        }
    }
    out.set_position(row.position().cloned());
    (out, replaced.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::party::config::KeyColumn;
    use blindlink_encoding::LinkageSecret;

    const SCHEMA: &str = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"name\"\nnormalise = [\"nfkc\", \"strip-whitespace\"]\n\
        tokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n\
        [[field]]\ncolumn = \"dob\"\nnormalise = [\"date\"]\ntokens = { kind = \"exact\" }\n\
        bits_per_token = 4\nmissing = \"reject\"\n";

    fn key(name: &str, columns: &[(&str, &[&str])]) -> MatchKeySpec {
        MatchKeySpec {
            name: name.to_owned(),
            columns: columns
                .iter()
                .map(|(c, steps)| KeyColumn {
                    column: (*c).to_owned(),
                    normalise: steps.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
        }
    }

    /// Reads `csv` with an `id` column, a `my-number` key on `mn`, a key on the combined
    /// `full` (= `surname` + `given`) and the schema's `name` (= `full`) and `dob`; returns a
    /// summary or the error.
    fn check(csv: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, csv).unwrap();
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let encoder =
            ClkEncoder::new(&schema, &LinkageSecret::from_bytes(b"k".to_vec()).unwrap()).unwrap();
        let combined = BTreeMap::from([(
            "full".to_owned(),
            vec!["surname".to_owned(), "given".to_owned()],
        )]);
        let renamed = BTreeMap::from([("name".to_owned(), "full".to_owned())]);
        let mut combined_for_schema = combined.clone();
        combined_for_schema.insert("name".to_owned(), combined["full"].clone());
        let got = read_party_records(
            &path,
            "id",
            &[
                key("mn", &[("mn", &["my-number"])]),
                key("name", &[("full", &["nfkc", "strip-whitespace"])]),
            ],
            &schema,
            &renamed,
            &combined_for_schema,
            Some(&encoder),
            None,
            InputOptions::default(),
        );
        let got = match got {
            Ok(r) => {
                let mut text = format!("{} records;", r.ids.len());
                for k in &r.match_keys {
                    text.push_str(&format!(" {}: {} keyless", k.name, k.keyless));
                    for row in &k.keyless_examples {
                        text.push_str(&format!(" [{} {} {}]", row.line, row.column, row.reason));
                    }
                    text.push(';');
                }
                let same =
                    r.match_keys[1].keys[0] == r.match_keys[1].keys.get(1).cloned().flatten();
                text.push_str(&format!(" first two names equal: {same}"));
                text
            }
            Err(e) => format!("{e:#}").replace(&dir.path().display().to_string(), "DIR"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn reads_keys_and_reports_rows_without_them() {
        check(
            "id,mn,surname,given,dob\n\
             a,123456789018,山田,太郎,1985-04-03\n\
             b,,山田太郎,,S60.4.3\n\
             c,123456789010,,,1990-01-01\n",
            "3 records; mn: 2 keyless [3 mn the value is missing] [4 mn my number check digit \
             is 0, expected 8]; name: 1 keyless [4 full the value is missing]; first two names \
             equal: true",
        );
        check(
            "id,mn,surname,given\na,1,x,y\n",
            "DIR/in.csv:1: no column 'dob' (the schema's field 'dob' reads it)",
        );
        check(
            "id,mn,surname,given,dob\na,1,x,y,2000-01-01\na,2,x,y,2000-01-01\n",
            "DIR/in.csv:3: id: record id 'a' appears more than once",
        );
        check(
            "id,mn,surname,given,dob\n ,1,x,y,2000-01-01\n",
            "DIR/in.csv:2: id: the record id is empty",
        );
        check(
            "id,mn,surname,given,dob\na,1,x,y,2000-02-30\n",
            "DIR/in.csv:2: field 'dob': day 30 does not exist in february 2000, which has 29 days",
        );
        check(
            "id,mn,mn,surname,given,dob\n",
            "DIR/in.csv:1: column 'mn' appears more than once",
        );
    }
}
