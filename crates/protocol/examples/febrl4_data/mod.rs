//! FEBRL4 (`tests/data/febrl4`) as the two parties' `PartyData`, encoded with the native schema
//! a new user would write (`schema-native.toml`): shared by the `febrl4` example and the
//! crate's FEBRL4 fuzzy test (`src/modes/fuzzy_tests.rs` includes this file with `#[path]`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use blindlink_encoding::{
    ClkEncoder, EncoderScratch, FieldTokenScratch, FieldTokenizer, LinkageSecret, SchemaDocument,
};
use blindlink_protocol::{
    FieldScoring, FuzzyConfig, PartyData, PartyRecord, fuzzy_candidate_pairs,
};

/// The data directory, from the crate's manifest directory.
pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/febrl4")
}

/// Both parties' records (the first `limit` true pairs: `a` row `i` and its duplicate in
/// `b`, in truth order; all 5,000 when `limit` is `None`) and the true pairs as (a, b)
/// indices into them.
pub(crate) struct Febrl4 {
    pub(crate) a: PartyData,
    pub(crate) b: PartyData,
    pub(crate) truth: Vec<(usize, usize)>,
    /// The compared fields, in schema order, weight 1 each (a new user's choice).
    pub(crate) fields: Vec<FieldScoring>,
    pub(crate) secret: Vec<u8>,
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

pub(crate) fn load(limit: Option<usize>) -> Febrl4 {
    let dir = dir();
    let schema_text = std::fs::read_to_string(dir.join("schema-native.toml")).unwrap();
    let document = SchemaDocument::parse(&schema_text).unwrap();
    let secret_bytes = std::fs::read(dir.join("secret.txt")).unwrap();
    let secret = LinkageSecret::from_bytes(secret_bytes.clone()).unwrap();
    let encoder = ClkEncoder::new(&document, &secret).unwrap();
    let tokenizer = FieldTokenizer::new(&document, &secret).unwrap();
    let columns: Vec<String> = tokenizer
        .field_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let (_, truth_rows) = read_csv(&dir.join("truth.csv"));
    let mut truth: Vec<(usize, usize)> = truth_rows
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
        .collect();
    truth.truncate(limit.unwrap_or(truth.len()));
    let party = |file: &str, rows_wanted: &[usize]| -> PartyData {
        let (header, rows) = read_csv(&dir.join(file));
        let index: Vec<usize> = columns
            .iter()
            .map(|c| header.iter().position(|h| h == c).unwrap())
            .collect();
        let mut scratch = EncoderScratch::default();
        let mut token_scratch = FieldTokenScratch::default();
        let records = rows_wanted
            .iter()
            .map(|&i| {
                let row = &rows[i];
                let values: Vec<&str> = index.iter().map(|&c| row[c].as_str()).collect();
                let mut clk = vec![0u8; encoder.bytes_per_clk()];
                encoder
                    .encode(&values, i as u64, &mut scratch, &mut clk)
                    .unwrap();
                let mut fields = Vec::new();
                tokenizer
                    .tokens(&values, &mut token_scratch, &mut fields)
                    .unwrap();
                PartyRecord {
                    id: row[0].clone(),
                    keys: Vec::new(),
                    clk: Some(clk),
                    fields,
                }
            })
            .collect();
        PartyData::from_records(records)
    };
    let a_rows: Vec<usize> = truth.iter().map(|t| t.0).collect();
    let b_rows: Vec<usize> = truth.iter().map(|t| t.1).collect();
    let a = party("a.csv", &a_rows);
    let b = party("b.csv", &b_rows);
    let pairs = (0..truth.len()).map(|i| (i, i)).collect();
    let fields = columns
        .iter()
        .map(|c| FieldScoring::weighted(c, 1.0))
        .collect();
    Febrl4 {
        a,
        b,
        truth: pairs,
        fields,
        secret: secret_bytes,
    }
}

/// Blocking quality of per-record band tokens: (pairs completeness, distinct candidate pairs,
/// candidate pairs per record of `a`, mean band tokens per record), with the candidate pairs
/// the fuzzy session compares when `a` compares ([`fuzzy_candidate_pairs`]: a token more than
/// 256 records of `a` hold pairs nobody, at most `config.max_pairs` pairs per record of `b`).
pub(crate) fn blocking_quality(
    config: &FuzzyConfig,
    a: &[Vec<Vec<u8>>],
    b: &[Vec<Vec<u8>>],
    truth: &[(usize, usize)],
) -> (f64, u64, f64, f64) {
    let pairs: HashSet<(usize, usize)> = fuzzy_candidate_pairs(config, a, b).into_iter().collect();
    let found = truth.iter().filter(|p| pairs.contains(p)).count();
    let tokens = a.iter().map(Vec::len).sum::<usize>() as f64 / a.len().max(1) as f64;
    (
        found as f64 / truth.len().max(1) as f64,
        pairs.len() as u64,
        pairs.len() as f64 / a.len().max(1) as f64,
        tokens,
    )
}
