//! Column binding: which input columns (by index in the header row, a CSV's or a query's)
//! feed the record id, each match-key column and each schema field. A schema field or key
//! column is read from the input column of the same name, from another one (`[input]
//! schema_columns`, schema fields only), or from several joined by a space (`[input]
//! combined_columns`, see [`join_parts`]). The encoder and the tokenizer take the schema's values
//! in [`Schema::columns`] order, so [`ColumnBinding::schema_values`] hands them exactly that.

use std::collections::{BTreeMap, BTreeSet};

use blindlink_encoding::{EncodingError, Schema, SchemaDocument, find_column};

use crate::keys::{MatchKeyEncoder, has_date_step, join_parts};
use crate::{MatchKeySpec, PartyError};

/// What [`ColumnBinding::bind`] binds: the `[input]` section's column mapping.
#[derive(Debug, Clone, Copy)]
pub struct InputColumns<'a> {
    /// `[input] id_column`.
    pub id_column: &'a str,
    /// `[[input.match_key]]`, in cascade order.
    pub match_keys: &'a [MatchKeySpec],
    /// `[input] schema_columns`: schema column -> CSV column.
    pub schema_columns: &'a BTreeMap<String, String>,
    /// `[input] combined_columns`: column -> CSV columns joined by a space.
    pub combined_columns: &'a BTreeMap<String, Vec<String>>,
}

/// A header row bound to a party's columns.
#[derive(Debug, Clone)]
pub struct ColumnBinding {
    /// The record id's column.
    pub id: usize,
    /// Per match key, per column: the CSV columns joined to make its value.
    pub keys: Vec<Vec<Vec<usize>>>,
    /// Per schema column ([`Schema::columns`] order): the CSV columns joined to make its value
    /// (empty when the schema's values were not asked for).
    pub schema: Vec<Vec<usize>>,
    /// The CSV columns a date step reads (in a match key or a native schema field): where
    /// era dates may be read leniently.
    pub date_sources: BTreeSet<usize>,
}

impl ColumnBinding {
    /// Binds `header` (found at `header_at`: `file:1` for a CSV) to `columns`, and to
    /// `schema`'s columns if `with_schema`.
    ///
    /// # Errors
    /// A column is missing or appears more than once in the header: `header_at: ...`, saying
    /// which part of the config needs it.
    pub fn bind(
        header_at: &str,
        header: &[&str],
        columns: InputColumns<'_>,
        schema: &SchemaDocument,
        with_schema: bool,
    ) -> Result<Self, PartyError> {
        let find = |column: &str, why: &str| -> Result<usize, PartyError> {
            find_column(header, column, why).map_err(|e| PartyError::Input {
                context: header_at.to_owned(),
                reason: match e {
                    EncodingError::Header(reason) => reason,
                    other => other.to_string(),
                },
            })
        };
        let sources =
            |column: &str, renamed: &str, why: &str| match columns.combined_columns.get(column) {
                Some(parts) => parts.iter().map(|p| find(p, why)).collect(),
                None => Ok(vec![find(renamed, why)?]),
            };
        let id = find(columns.id_column, "input.id_column names it")?;
        let mut date_sources = BTreeSet::new();
        let mut keys = Vec::with_capacity(columns.match_keys.len());
        for spec in columns.match_keys {
            let encoder = MatchKeyEncoder::new(spec)?;
            let why = format!("match key '{}' needs it", spec.name);
            let mut bound = Vec::with_capacity(spec.columns.len());
            for (i, column) in spec.columns.iter().enumerate() {
                let indices: Vec<usize> = sources(&column.column, &column.column, &why)?;
                if encoder.column_has_date_step(i) {
                    date_sources.extend(indices.iter().copied());
                }
                bound.push(indices);
            }
            keys.push(bound);
        }
        let mut schema_sources = Vec::new();
        if with_schema {
            let dates = schema_date_columns(&schema.schema);
            for (n, column) in schema.schema.columns().into_iter().enumerate() {
                let why = format!("the schema's field '{column}' reads it");
                let renamed = columns
                    .schema_columns
                    .get(column)
                    .map_or(column, String::as_str);
                let indices: Vec<usize> = sources(column, renamed, &why)?;
                if dates.get(n).copied().unwrap_or(false) {
                    date_sources.extend(indices.iter().copied());
                }
                schema_sources.push(indices);
            }
        }
        Ok(Self {
            id,
            keys,
            schema: schema_sources,
            date_sources,
        })
    }

    /// The schema's values of one row (`row(i)` is the value of CSV column `i`), each joined
    /// from its CSV columns, into `values` (resized to the schema's columns).
    pub fn schema_values<'r>(&self, row: impl Fn(usize) -> &'r str, values: &mut Vec<String>) {
        values.resize(self.schema.len(), String::new());
        for (value, sources) in values.iter_mut().zip(&self.schema) {
            join_parts(sources.iter().map(|&c| row(c)), value);
        }
    }

    /// The raw values of match key `key`'s columns for one row, into `values`.
    pub fn key_values<'r>(
        &self,
        key: usize,
        row: impl Fn(usize) -> &'r str,
        values: &mut Vec<String>,
    ) {
        let columns = &self.keys[key];
        values.resize(columns.len(), String::new());
        for (value, sources) in values.iter_mut().zip(columns) {
            join_parts(sources.iter().map(|&c| row(c)), value);
        }
    }
}

/// Per column of [`Schema::columns`]: whether a date step normalises it (native schemas; a
/// clkhash schema's date features have their own formats and are never read leniently).
fn schema_date_columns(schema: &Schema) -> Vec<bool> {
    match schema {
        Schema::Native(native) => native
            .fields
            .iter()
            .map(|f| has_date_step(f.pipeline()))
            .collect(),
        Schema::Clkhash(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::KeyColumn;

    const SCHEMA: &str = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"surname\"\nnormalise = [\"nfkc\"]\n\
        tokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n";

    /// Binds `header` with id column `id`, one match key on column `number` and the schema's
    /// `surname` (renamed to `family` when `rename`); the error text, or the bound indices.
    fn check(header: &[&str], rename: bool, expected: &str) -> Option<String> {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let keys = [MatchKeySpec {
            name: "number".into(),
            columns: vec![KeyColumn {
                column: "number".into(),
                normalise: vec!["digits-only".into()],
            }],
        }];
        let renamed: BTreeMap<String, String> = if rename {
            [("surname".to_owned(), "family".to_owned())].into()
        } else {
            BTreeMap::new()
        };
        let columns = InputColumns {
            id_column: "id",
            match_keys: &keys,
            schema_columns: &renamed,
            combined_columns: &BTreeMap::new(),
        };
        let got = match ColumnBinding::bind("in.csv:1", header, columns, &schema, true) {
            Ok(b) => format!("id {} keys {:?} schema {:?}", b.id, b.keys, b.schema),
            Err(e) => e.to_string(),
        };
        (got != expected).then(|| format!("{header:?}: got '{got}', expected '{expected}'"))
    }

    #[test]
    fn header_errors_name_the_file_the_column_and_who_needs_it() {
        let wrong: Vec<String> = [
            check(
                &["surname", "number", "id"],
                false,
                "id 2 keys [[[1]]] schema [[0]]",
            ),
            check(
                &["family", "number", "id"],
                true,
                "id 2 keys [[[1]]] schema [[0]]",
            ),
            check(
                &["surname", "number"],
                false,
                "in.csv:1: no column 'id' (input.id_column names it)",
            ),
            check(
                &["id", "surname"],
                false,
                "in.csv:1: no column 'number' (match key 'number' needs it)",
            ),
            check(
                &["id", "number", "surname"],
                true,
                "in.csv:1: no column 'family' (the schema's field 'surname' reads it)",
            ),
            check(
                &["id", "number", "id", "surname"],
                false,
                "in.csv:1: column 'id' appears more than once",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
