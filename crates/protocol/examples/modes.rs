//! Runs one linkage mode in memory on a synthetic scenario and prints its time, quality and
//! disclosure: the command behind the protocol figures in papers/benchmarks.md.
//!
//! ```sh
//! cargo run --release -p blindlink-protocol --example modes -- fuzzy 133334 [bands] [bits]
//! cargo run --release -p blindlink-protocol --example modes -- validate 100000
//! ```
//! Modes: `exact`, `validate`, `fuzzy`, `clk-exchange`, `cardinality`. Two-hospitals for fuzzy
//! and clk-exchange (overlap 0.5), registry-insurer otherwise; seed 1; two rayon threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::Instant;

use blindlink_encoding::normalise::Pipeline;
use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
use blindlink_matching::LinkageQuality;
use blindlink_protocol::*;
use blindlink_synth::{
    Generator, Locale, Outcome, OutputFile, RecordSink, Scenario, SynthConfig, Truth, columns,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Per-field filters of the quasi-identifiers compared by `validate` (the field names of
/// [`FieldScoring::defaults`]), 256 bits each.
const PER_FIELD_SCHEMA: &str = r#"
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
const CLK_SCHEMA: &str = r#"
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
struct Collected {
    files: HashMap<&'static str, Vec<Vec<String>>>,
    truth: Vec<Truth>,
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

fn generate(scenario: Scenario, persons: u64, overlap: f64, seed: u64) -> Collected {
    let config = SynthConfig::new(scenario, Locale::Japanese, persons, overlap, seed);
    let mut sink = Collected::default();
    Generator::new(config).unwrap().run(&mut sink).unwrap();
    sink
}

/// The derived columns both schemas read, from one synthetic row of `file`.
fn derived(file: OutputFile, scenario: Scenario, row: &[String]) -> Vec<String> {
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

fn secret() -> LinkageSecret {
    LinkageSecret::from_bytes(vec![0x5e; 32]).unwrap()
}

/// A party's data from one synthetic file: My Number (normalised, `None` when the check digit
/// fails), per-field filters and a record-level CLK.
fn party(file: OutputFile, scenario: Scenario, rows: &[Vec<String>]) -> PartyData {
    let per_field =
        ClkEncoder::new(&SchemaDocument::parse(PER_FIELD_SCHEMA).unwrap(), &secret()).unwrap();
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
            let mut fields = vec![0u8; per_field.bytes_per_clk()];
            per_field
                .encode(&values, i as u64, &mut scratch, &mut fields)
                .unwrap();
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
                fields: fields.chunks(32).map(|f| Some(f.to_vec())).collect(),
            }
        })
        .collect();
    PartyData { records }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str).unwrap_or("fuzzy") {
        "cardinality" => Mode::Cardinality,
        "exact" => Mode::Exact,
        "validate" => Mode::Validate,
        "fuzzy" => Mode::Fuzzy,
        "clk-exchange" => Mode::ClkExchange,
        other => panic!("unknown mode {other}"),
    };
    let persons: u64 = args.get(1).map_or(10_000, |p| p.parse().unwrap());
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let mut config = ModeConfig::new(mode);
    config.blocking_key = Some(derive_blocking_key(b"benchmark linkage secret"));
    if let Some(bands) = args.get(2) {
        config.fuzzy.lsh.bands = bands.parse().unwrap();
    }
    if let Some(bits) = args.get(3) {
        config.fuzzy.lsh.bits_per_band = bits.parse().unwrap();
    }
    if let Some(t) = args.get(4) {
        config.fuzzy.dice_threshold = t.parse().unwrap();
    }
    let two_hospitals = matches!(mode, Mode::Fuzzy | Mode::ClkExchange);
    let scenario = if two_hospitals {
        Scenario::TwoHospitals
    } else {
        Scenario::RegistryInsurer
    };
    let overlap = 0.5;
    let started = Instant::now();
    let data = generate(scenario, persons, overlap, 1);
    let (fa, fb) = if two_hospitals {
        (OutputFile::HospitalA, OutputFile::HospitalB)
    } else {
        (OutputFile::Insurer, OutputFile::Registry)
    };
    let a = party(fa, scenario, &data.files[fa.file_name()]);
    let b = party(fb, scenario, &data.files[fb.file_name()]);
    eprintln!(
        "{} x {} records generated and encoded in {:.1} s",
        a.records.len(),
        b.records.len(),
        started.elapsed().as_secs_f64()
    );
    let ids = |p: &PartyData| -> HashMap<String, usize> {
        p.records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    };
    let (ia, ib) = (ids(&a), ids(&b));
    let mut da = new_driver(
        Role::Initiator,
        &config,
        a,
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut db = new_driver(
        Role::Responder,
        &config,
        b,
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    let started = Instant::now();
    let ledgers = run_in_memory(&mut da, &mut db, mode).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let (oa, ob) = (da.outcome().unwrap(), db.outcome().unwrap());
    println!(
        "mode {} parameters {:?}",
        mode.name(),
        config.parameters().unwrap().entries()
    );
    println!("session time {seconds:.2} s (in memory, both parties, 2 threads)");
    println!(
        "bytes initiator->responder {} responder->initiator {}",
        ledgers.initiator.sent.total.bytes, ledgers.responder.sent.total.bytes
    );
    println!("initiator learned {:?}", oa.learned);
    println!("responder learned {:?}", ob.learned);
    println!("initiator counts {:?}", oa.counts);
    let by_link: HashMap<&str, usize> = ob
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.link_id.as_deref()?, i)))
        .collect();
    let pairs: Vec<(usize, usize)> = oa
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == LinkStatus::Linked)
        .filter_map(|(i, r)| Some((i, *by_link.get(r.link_id.as_deref()?)?)))
        .collect();
    if two_hospitals {
        let truth: Vec<(usize, usize)> = data
            .truth
            .iter()
            .filter_map(|t| match t {
                Truth::Pair(p) => Some((ia[&p.hospital_a_record_id], ib[&p.hospital_b_record_id])),
                Truth::Insurer(_) => None,
            })
            .collect();
        let q = LinkageQuality::measure(&pairs, &truth);
        println!(
            "precision {:.4} recall {:.4} ({q:?})",
            q.precision(),
            q.recall()
        );
    } else if mode == Mode::Validate {
        let outcome: HashMap<&str, Outcome> = data
            .truth
            .iter()
            .filter_map(|t| match t {
                Truth::Insurer(t) => Some((t.insurer_record_id.as_str(), t.outcome)),
                Truth::Pair(_) => None,
            })
            .collect();
        let (mut wrong, mut wrong_flagged, mut correct, mut correct_flagged) = (0, 0, 0, 0);
        for row in &oa.rows {
            let flagged = match row.status {
                LinkStatus::Linked => false,
                LinkStatus::SuspectedWrongPerson => true,
                _ => continue,
            };
            match outcome[row.local_id.as_str()] {
                Outcome::WrongPerson(_) => {
                    wrong += 1;
                    wrong_flagged += usize::from(flagged);
                }
                Outcome::Correct => {
                    correct += 1;
                    correct_flagged += usize::from(flagged);
                }
                _ => {}
            }
        }
        println!(
            "wrong-person links flagged {wrong_flagged} of {wrong} ({:.2}%), correct links flagged {correct_flagged} of {correct} ({:.3}%)",
            100.0 * wrong_flagged as f64 / wrong.max(1) as f64,
            100.0 * correct_flagged as f64 / correct.max(1) as f64
        );
    }
}
