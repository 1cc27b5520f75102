//! Synthetic two-party inputs for the linkage modes, shared by the `modes` example and the
//! crate's in-memory mode tests (`src/modes/tests.rs` includes this file with `#[path]`): a
//! registry-insurer or two-hospitals scenario from `blindlink-synth`, encoded with
//! `blindlink-encoding` into the `PartyData` each side hands its driver.
#![allow(dead_code)]

use std::collections::HashMap;

use blindlink_encoding::normalise::Pipeline;
use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
use blindlink_protocol::{FieldTokens, Mode, ModeConfig, PartyData, PartyRecord};
use blindlink_synth::{
    Generator, Locale, OutputFile, RecordSink, Scenario, SynthConfig, Truth, columns,
};

mod scoring;
pub(crate) use scoring::field_scoring;

/// The scenario's ID match key.
pub(crate) const ID_KEY: &str = "my_number";

/// The defaults of `mode` on the scenario: the ID key [`ID_KEY`] and the scoring
/// [`field_scoring`].
pub(crate) fn mode_config(mode: Mode) -> ModeConfig {
    ModeConfig::new(mode, vec![ID_KEY.to_owned()], field_scoring())
}

/// Per-field filters of the quasi-identifiers compared by `validate` (the field names of
/// [`field_scoring`]), 256 bits each.
pub(crate) const PER_FIELD_SCHEMA: &str = r#"
version = 1
[filter]
bits = 1280
layout = "per-field"

[[field]]
column = "name_kana"
normalise = ["nfkc", "halfwidth-kana", "katakana", "long-vowel-fold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 12
bits = 256

[[field]]
column = "name_kanji"
normalise = ["nfkc", "itaiji", "casefold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 12
bits = 256

[[field]]
column = "date_of_birth"
normalise = ["nfkc", "date"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_token = 8
bits = 256

[[field]]
column = "sex"
normalise = ["sex"]
tokens = { kind = "exact" }
bits_per_token = 30
bits = 256

[[field]]
column = "address"
normalise = ["nfkc", "jp-address", "drop-prefecture", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 8
bits = 256
"#;

/// One record-level CLK over the same quasi-identifiers, for fuzzy and clk-exchange.
pub(crate) const CLK_SCHEMA: &str = r#"
version = 1
[filter]
bits = 1024
layout = "clk"

[[field]]
column = "name_kana"
normalise = ["nfkc", "halfwidth-kana", "katakana", "long-vowel-fold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 15

[[field]]
column = "name_kanji"
normalise = ["nfkc", "itaiji", "casefold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 15

[[field]]
column = "date_of_birth"
normalise = ["nfkc", "date"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_token = 12

[[field]]
column = "sex"
normalise = ["sex"]
tokens = { kind = "exact" }
bits_per_token = 20

[[field]]
column = "address"
normalise = ["nfkc", "jp-address", "drop-prefecture", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 8
"#;

#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) files: HashMap<&'static str, Vec<Vec<String>>>,
    pub(crate) truth: Vec<Truth>,
}

impl RecordSink for Collected {
    type Error = std::convert::Infallible;
    fn record(&mut self, file: OutputFile, fields: &[String]) -> Result<(), Self::Error> {
        self.files
            .entry(file.file_name())
            .or_default()
            .push(fields.to_vec());
        Ok(())
    }
    fn truth(&mut self, truth: &Truth) -> Result<(), Self::Error> {
        self.truth.push(truth.clone());
        Ok(())
    }
}

pub(crate) fn generate(scenario: Scenario, persons: u64, overlap: f64, seed: u64) -> Collected {
    let config = SynthConfig::new(scenario, Locale::Japanese, persons, overlap, seed);
    let mut sink = Collected::default();
    Generator::new(config).unwrap().run(&mut sink).unwrap();
    sink
}

/// The derived columns both schemas read, from one synthetic row of `file`.
pub(crate) fn derived(file: OutputFile, scenario: Scenario, row: &[String]) -> Vec<String> {
    let header = columns(Locale::Japanese, file, scenario);
    let get = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .map_or("", |i| row[i].as_str())
    };
    vec![
        format!("{}{}", get("surname_kana"), get("given_name_kana")),
        format!("{}{}", get("surname_kanji"), get("given_name_kanji")),
        get("date_of_birth").to_owned(),
        get("sex").to_owned(),
        format!("{}{}{}", get("prefecture"), get("city"), get("address")),
    ]
}

pub(crate) fn secret() -> LinkageSecret {
    LinkageSecret::from_bytes(vec![0x5e; 32]).unwrap()
}

/// How the compared fields are normalised and tokenised, as in [`PER_FIELD_SCHEMA`]: bigrams
/// of the names and the address, positional unigrams of the date of birth, the sex as one
/// token.
pub(crate) struct Tokeniser {
    fields: Vec<(Pipeline, TokenKind)>,
}

#[derive(Clone, Copy)]
enum TokenKind {
    Bigrams,
    Positional,
    Exact,
}

impl Tokeniser {
    pub(crate) fn new() -> Self {
        let field = |steps: &[&str], kind| (Pipeline::parse(steps).unwrap(), kind);
        Self {
            fields: vec![
                field(
                    &[
                        "nfkc",
                        "halfwidth-kana",
                        "katakana",
                        "long-vowel-fold",
                        "strip-whitespace",
                    ],
                    TokenKind::Bigrams,
                ),
                field(
                    &["nfkc", "itaiji", "casefold", "strip-whitespace"],
                    TokenKind::Bigrams,
                ),
                field(&["nfkc", "date"], TokenKind::Positional),
                field(&["sex"], TokenKind::Exact),
                field(
                    &["nfkc", "jp-address", "drop-prefecture", "strip-whitespace"],
                    TokenKind::Bigrams,
                ),
            ],
        }
    }

    /// Each field's tokens (empty when the value is missing or does not normalise).
    pub(crate) fn tokens(&self, values: &[&str]) -> Vec<FieldTokens> {
        self.fields
            .iter()
            .zip(values)
            .map(|((pipeline, kind), value)| {
                let Ok(text) = pipeline.apply(value) else {
                    return Vec::new();
                };
                let chars: Vec<char> = text.chars().collect();
                if chars.is_empty() {
                    return Vec::new();
                }
                match kind {
                    TokenKind::Exact => vec![text.into_bytes()],
                    TokenKind::Positional => chars
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{i}:{c}").into_bytes())
                        .collect(),
                    TokenKind::Bigrams if chars.len() == 1 => vec![text.into_bytes()],
                    TokenKind::Bigrams => chars
                        .windows(2)
                        .map(|w| w.iter().collect::<String>().into_bytes())
                        .collect(),
                }
            })
            .collect()
    }
}

/// The per-field filters of a record's compared fields (what `validate` sent before the
/// grouped PSI), to check that none crosses the wire now.
pub(crate) fn field_filters(values: &[&str], row: u64) -> Vec<Vec<u8>> {
    let per_field =
        ClkEncoder::new(&SchemaDocument::parse(PER_FIELD_SCHEMA).unwrap(), &secret()).unwrap();
    let mut scratch = EncoderScratch::default();
    let mut fields = vec![0u8; per_field.bytes_per_clk()];
    per_field
        .encode(values, row, &mut scratch, &mut fields)
        .unwrap();
    fields.chunks(32).map(<[u8]>::to_vec).collect()
}

/// A party's data from one synthetic file: My Number (normalised, `None` when the check digit
/// fails), the compared fields' tokens and a record-level CLK.
pub(crate) fn party(file: OutputFile, scenario: Scenario, rows: &[Vec<String>]) -> PartyData {
    let tokeniser = Tokeniser::new();
    let clk = ClkEncoder::new(&SchemaDocument::parse(CLK_SCHEMA).unwrap(), &secret()).unwrap();
    let my_number = Pipeline::parse(&["my-number"]).unwrap();
    let header = columns(Locale::Japanese, file, scenario);
    let number_column = header.iter().position(|c| *c == "my_number");
    let mut scratch = EncoderScratch::default();
    let records = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let values = derived(file, scenario, row);
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut record_clk = vec![0u8; clk.bytes_per_clk()];
            clk.encode(&values, i as u64, &mut scratch, &mut record_clk)
                .unwrap();
            let key = number_column
                .and_then(|c| my_number.apply(&row[c]).ok())
                .map(String::into_bytes);
            PartyRecord {
                id: row[0].clone(),
                keys: vec![key],
                clk: Some(record_clk),
                fields: tokeniser.tokens(&values),
            }
        })
        .collect();
    PartyData::from_records(records)
}
