//! Reads a party's input CSV (or a PostgreSQL query's rows, as CSV: see
//! [`super::postgres`]) into what a linkage session needs, row by row through
//! [`RecordsBuilder`]: local record ids, the normalised match key of every cascade step, the
//! CLK and the field tokens of every record where the mode uses them. The rules (bad rows, era
//! dates, keyless rows, empty inputs) are the builder's; this module only turns CSV records
//! into rows, and a row that is not valid UTF-8 or cannot be parsed into a bad row.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use blindlink_encoding::{ClkEncoder, FieldTokenizer, SchemaDocument};
use blindlink_party::{InputColumns, RecordSource, RecordsBuilder, RecordsSpec};

use super::config::MatchKeySpec;

pub use blindlink_party::{
    InputOptions, KeylessRow, LISTED_KEYLESS_ROWS, MatchKeyColumn, PartyRecords, RejectedRow,
    Rejects,
};

/// Reads `csv_path`: `id_column`, the `match_keys` columns and the schema's columns (renamed
/// through `schema_columns`, or made of several CSV columns joined by a space through
/// `combined_columns`), and encodes the CLKs with `encoder` and the field tokens with
/// `tokenizer` (on the current rayon pool; a mode wants either or both).
/// Bad rows and era dates are handled as `options` says (see [`blindlink_party::builder`]).
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
    let spec = RecordsSpec {
        columns: InputColumns {
            id_column,
            match_keys,
            schema_columns,
            combined_columns,
        },
        schema,
        encoder,
        tokenizer,
        options,
        shard: None,
        own_shard_file: false,
    };
    read_csv_records(
        std::io::BufReader::new(file),
        RecordSource::Csv(shown),
        spec,
    )
}

/// Reads CSV `input` (a header row, then records) from `source` into records as `spec` says.
/// Rows are named by their line in a CSV file, by their number in a query's result.
///
/// # Errors
/// As [`read_party_records`]; a read error mid-stream (a dropped database connection, a
/// query that fails after some rows) names the row it stopped at.
pub fn read_csv_records(
    input: impl Read,
    source: RecordSource,
    spec: RecordsSpec<'_>,
) -> anyhow::Result<PartyRecords> {
    let shown = source.shown().to_owned();
    let is_query = matches!(source, RecordSource::Query(_));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let header = reader
        .byte_headers()
        .with_context(|| format!("{}: cannot read the header row", source.header_at()))?
        .clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        if is_query {
            bail!("{shown}: the query returned no columns");
        }
        bail!("{shown}: the file is empty (a header row naming the columns is required)");
    }
    let header = csv::StringRecord::from_byte_record(header).map_err(|e| {
        anyhow::anyhow!(
            "{}: the header row is not valid UTF-8 (column {})",
            source.header_at(),
            e.utf8_error().field() + 1
        )
    })?;
    let header_fields: Vec<&str> = header.iter().collect();
    let mut builder = RecordsBuilder::new(source.clone(), &header_fields, spec)?;
    let mut row = csv::ByteRecord::new();
    let mut rows_read: u64 = 0;
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let place = if is_query {
                    source.at(rows_read + 1, "", "")
                } else {
                    format!("{shown}:{}", e.position().map_or(0, csv::Position::line))
                };
                bail!("{place}: cannot read the row: {}", error_chain(&e));
            }
        }
        rows_read += 1;
        let line = if is_query {
            rows_read
        } else {
            row.position().map_or(rows_read + 1, csv::Position::line)
        };
        let mut fields: Vec<&str> = Vec::with_capacity(header.len());
        let mut utf8 = Ok(());
        for (i, value) in row.iter().enumerate() {
            match std::str::from_utf8(value) {
                Ok(value) => fields.push(value),
                Err(_) => {
                    utf8 = Err(i);
                    break;
                }
            }
        }
        match utf8 {
            _ if row.len() != header.len() => {
                // The builder names the field-count error; the values as read.
                let values: Vec<String> = lossy(&row);
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                builder.push(line, &values)?;
            }
            Ok(()) => builder.push(line, &fields)?,
            Err(i) => {
                let field = header.get(i).unwrap_or("").to_owned();
                let reason = "the value is not valid UTF-8".to_owned();
                builder.push_unreadable(line, &field, reason, lossy(&row))?;
            }
        }
    }
    Ok(builder.finish()?)
}

/// `e` and its sources (`db error: ERROR: division by zero`), each said once.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A row's values, invalid UTF-8 replaced by U+FFFD.
fn lossy(row: &csv::ByteRecord) -> Vec<String> {
    row.iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

pub(crate) use blindlink_party::has_date_step;

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
