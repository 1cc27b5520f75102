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

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use blindlink_encoding::normalise::Pipeline;
use blindlink_encoding::{
    ClkEncoder, EncoderScratch, FieldTokenScratch, FieldTokenizer, FieldTokens, SchemaDocument,
};
use rayon::prelude::*;

use super::config::MatchKeySpec;

/// How many rows without a key a report lists by line, per step.
pub const LISTED_KEYLESS_ROWS: usize = 10;

/// A row that has no key for one cascade step, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeylessRow {
    /// 1-based line in the CSV (the header is line 1).
    pub line: u64,
    /// The column whose value was missing or rejected.
    pub column: String,
    /// Why.
    pub reason: String,
}

/// What the rows gave for one cascade step.
#[derive(Debug, Clone, Default)]
pub struct MatchKeyColumn {
    /// The step's name.
    pub name: String,
    /// One key per record, `None` where the record has none.
    pub keys: Vec<Option<Vec<u8>>>,
    /// Rows without a key.
    pub keyless: u64,
    /// The first [`LISTED_KEYLESS_ROWS`] of them.
    pub keyless_examples: Vec<KeylessRow>,
}

/// A party's records, ready for a session.
#[derive(Debug, Clone, Default)]
pub struct PartyRecords {
    /// Local record ids, in file order.
    pub ids: Vec<String>,
    /// One entry per cascade step.
    pub match_keys: Vec<MatchKeyColumn>,
    /// Concatenated CLKs, `clk_bytes` each, in file order (empty if no schema was given).
    pub clks: Vec<u8>,
    /// Bytes per CLK.
    pub clk_bytes: usize,
    /// Each record's field tokens, in the schema's field order (empty if not asked for).
    pub fields: Vec<Vec<FieldTokens>>,
}

impl PartyRecords {
    /// The CLK of record `i`.
    #[must_use]
    pub fn clk(&self, i: usize) -> &[u8] {
        &self.clks[i * self.clk_bytes..(i + 1) * self.clk_bytes]
    }
}

struct BoundKeyColumn {
    /// CSV columns joined by a space (one, unless it is a combined column).
    indices: Vec<usize>,
    name: String,
    pipeline: Pipeline,
}

/// Reads `csv_path`: `id_column`, the `match_keys` columns and the schema's columns (renamed
/// through `schema_columns`, or made of several CSV columns joined by a space through
/// `combined_columns`), and encodes the CLKs with `encoder` and the field tokens with
/// `tokenizer` (on the current rayon pool).
///
/// # Errors
/// The file cannot be read, a column is missing or repeated, an id is empty or repeated, or a
/// row cannot be encoded; each names the file and line.
// The CLK encoder and the field tokenizer are independent options: a mode wants either or both.
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
) -> anyhow::Result<PartyRecords> {
    let shown = csv_path.display().to_string();
    let file = std::fs::File::open(csv_path).with_context(|| format!("cannot read {shown}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::new(file));
    let header = reader
        .headers()
        .with_context(|| format!("{shown}:1: cannot read the header row"))?
        .clone();
    let find = |column: &str, why: &str| -> anyhow::Result<usize> {
        let hits: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| *h == column)
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => bail!("{shown}:1: no column '{column}' ({why})"),
            _ => bail!("{shown}:1: column '{column}' appears more than once"),
        }
    };
    let id_index = find(id_column, "input.id_column names it")?;
    let mut key_columns: Vec<Vec<BoundKeyColumn>> = Vec::with_capacity(match_keys.len());
    for key in match_keys {
        let mut bound = Vec::with_capacity(key.columns.len());
        for column in &key.columns {
            let why = format!("match key '{}' needs it", key.name);
            let indices = match combined_columns.get(&column.column) {
                Some(parts) => parts
                    .iter()
                    .map(|p| find(p, &why))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                None => vec![find(&column.column, &why)?],
            };
            bound.push(BoundKeyColumn {
                indices,
                name: column.column.clone(),
                pipeline: Pipeline::parse(&column.normalise)
                    .with_context(|| format!("match key '{}'", key.name))?,
            });
        }
        key_columns.push(bound);
    }
    let mut schema_sources: Vec<Vec<usize>> = Vec::new();
    let schema_columns_needed = if encoder.is_some() || tokenizer.is_some() {
        document_columns(schema)
    } else {
        Vec::new()
    };
    for c in schema_columns_needed {
        let why = format!("the schema's field '{c}' reads it");
        let sources = match combined_columns.get(c) {
            Some(parts) => parts
                .iter()
                .map(|p| find(p, &why))
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => vec![find(schema_columns.get(c).map_or(c, String::as_str), &why)?],
        };
        schema_sources.push(sources);
    }

    let mut rows: Vec<csv::StringRecord> = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let row = row.with_context(|| format!("{shown}:{line}: cannot read the row"))?;
        rows.push(row);
    }

    let mut records = PartyRecords {
        clk_bytes: encoder.map_or(0, ClkEncoder::bytes_per_clk),
        ..PartyRecords::default()
    };
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let line = i as u64 + 2;
        let id = row.get(id_index).unwrap_or("").trim();
        if id.is_empty() {
            bail!("{shown}:{line}: {id_column}: the record id is empty");
        }
        if !seen.insert(id.to_owned()) {
            bail!("{shown}:{line}: {id_column}: record id '{id}' appears more than once");
        }
        records.ids.push(id.to_owned());
    }
    drop(seen);

    for (spec, bound) in match_keys.iter().zip(&key_columns) {
        let results: Vec<Result<Vec<u8>, KeylessRow>> = rows
            .par_iter()
            .enumerate()
            .map(|(i, row)| match_key(row, i as u64 + 2, bound))
            .collect();
        let mut column = MatchKeyColumn {
            name: spec.name.clone(),
            keys: Vec::with_capacity(rows.len()),
            ..MatchKeyColumn::default()
        };
        for result in results {
            match result {
                Ok(key) => column.keys.push(Some(key)),
                Err(row) => {
                    column.keys.push(None);
                    column.keyless += 1;
                    if column.keyless_examples.len() < LISTED_KEYLESS_ROWS {
                        column.keyless_examples.push(row);
                    }
                }
            }
        }
        records.match_keys.push(column);
    }

    if let Some(tokenizer) = tokenizer {
        records.fields = rows
            .par_iter()
            .enumerate()
            .map_init(
                || (FieldTokenScratch::default(), Vec::<String>::new()),
                |(scratch, values), (i, row)| {
                    schema_values(row, &schema_sources, values);
                    let values: Vec<&str> = values.iter().map(String::as_str).collect();
                    let mut fields = Vec::new();
                    tokenizer
                        .tokens(&values, scratch, &mut fields)
                        .map_err(|e| anyhow::anyhow!("{shown}:{}: {e}", i as u64 + 2))?;
                    Ok(fields)
                },
            )
            .collect::<anyhow::Result<_>>()?;
    }
    let Some(encoder) = encoder else {
        return Ok(records);
    };
    let clk_bytes = records.clk_bytes;
    let mut clks = vec![0u8; rows.len() * clk_bytes];
    clks.par_chunks_mut(clk_bytes.max(1))
        .zip(rows.par_iter())
        .enumerate()
        .try_for_each_init(
            || (EncoderScratch::default(), Vec::<String>::new()),
            |(scratch, values), (i, (out, row))| {
                schema_values(row, &schema_sources, values);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                encoder
                    .encode(&values, i as u64, scratch, out)
                    .map_err(|e| anyhow::anyhow!("{shown}:{}: {e}", i as u64 + 2))
            },
        )?;
    records.clks = clks;
    Ok(records)
}

/// The schema's values of `row`: each from its CSV columns joined by a space.
fn schema_values(row: &csv::StringRecord, schema_sources: &[Vec<usize>], values: &mut Vec<String>) {
    values.resize(schema_sources.len(), String::new());
    for (value, sources) in values.iter_mut().zip(schema_sources) {
        value.clear();
        for &c in sources {
            let part = row.get(c).unwrap_or("").trim();
            if !part.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(part);
            }
        }
    }
}

fn document_columns(schema: &SchemaDocument) -> Vec<&str> {
    schema.schema.columns()
}

fn match_key(
    row: &csv::StringRecord,
    line: u64,
    columns: &[BoundKeyColumn],
) -> Result<Vec<u8>, KeylessRow> {
    let mut key = Vec::with_capacity(64);
    let mut joined = String::new();
    for column in columns {
        joined.clear();
        for &i in &column.indices {
            let part = row.get(i).unwrap_or("").trim();
            if !part.is_empty() {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(part);
            }
        }
        let raw = joined.as_str();
        let keyless = |reason: String| KeylessRow {
            line,
            column: column.name.clone(),
            reason,
        };
        if raw.trim().is_empty() {
            return Err(keyless("the value is missing".to_owned()));
        }
        let value = column
            .pipeline
            .apply(raw)
            .map_err(|e| keyless(e.to_string()))?;
        if value.is_empty() {
            return Err(keyless("the value is empty after normalisation".to_owned()));
        }
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        key.extend_from_slice(&len.to_le_bytes());
        key.extend_from_slice(value.as_bytes());
    }
    Ok(key)
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
