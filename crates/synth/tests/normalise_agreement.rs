//! The notation errors are notation only: after the encoder's normalisation steps, every
//! corrupted insurer field equals the registry's canonical field — except the kinds that change
//! the value itself (a kana typo, a long-vowel mark, a missing prefecture), which linkage must
//! absorb by similarity rather than by normalisation.

use std::collections::HashMap;
use std::convert::Infallible;

use blindlink_encoding::normalise::Pipeline;
use blindlink_synth::{Generator, Locale, OutputFile, RecordSink, Scenario, SynthConfig, Truth};

#[derive(Default)]
struct Collect {
    registry: HashMap<String, Vec<String>>,
    insurer: HashMap<String, Vec<String>>,
    truth: Vec<Truth>,
}

impl RecordSink for Collect {
    type Error = Infallible;
    fn record(&mut self, file: OutputFile, fields: &[String]) -> Result<(), Infallible> {
        let map = match file {
            OutputFile::Registry => &mut self.registry,
            _ => &mut self.insurer,
        };
        map.insert(fields[0].clone(), fields.to_vec());
        Ok(())
    }
    fn truth(&mut self, truth: &Truth) -> Result<(), Infallible> {
        self.truth.push(truth.clone());
        Ok(())
    }
}

/// Columns compared for each corrupted field, and the steps applied to both sides.
fn comparison(field: &str) -> Option<(&'static [usize], &'static [&'static str])> {
    Some(match field {
        "surname_kanji" | "given_name_kanji" => (&[2, 3], &["nfkc", "itaiji"]),
        "kana_name" | "surname_kana" | "given_name_kana" => {
            (&[4, 5], &["nfkc", "katakana", "strip-whitespace"])
        }
        "date_of_birth" => (&[6], &["date"]),
        "sex" => (&[7], &["sex"]),
        "postcode" => (&[8], &["digits-only"]),
        "address" => (&[11], &["nfkc", "jp-address"]),
        _ => return None,
    })
}

#[test]
fn notation_errors_normalise_away() {
    let mut config = SynthConfig::new(Scenario::RegistryInsurer, Locale::Japanese, 20_000, 1.0, 4);
    // Every kind many times over.
    config.corruption.kanji_variant = 0.5;
    config.corruption.kana_variant = 0.5;
    config.corruption.date_format = 0.5;
    config.corruption.sex_format = 0.5;
    config.corruption.address_format = 0.5;
    let mut sink = Collect::default();
    Generator::new(config).unwrap().run(&mut sink).unwrap();

    let mut checked: HashMap<String, usize> = HashMap::new();
    let mut mismatches: Vec<String> = Vec::new();
    for truth in &sink.truth {
        let Truth::Insurer(t) = truth else {
            panic!("pair truth")
        };
        let Some(registry_id) = &t.registry_record_id else {
            continue;
        };
        let registry = &sink.registry[registry_id];
        let insurer = &sink.insurer[&t.insurer_record_id];
        for c in &t.corruptions {
            if matches!(c.kind, "typo" | "long-vowel" | "missing") || c.field == "my_number" {
                continue;
            }
            let Some((columns, steps)) = comparison(c.field) else {
                panic!("no comparison for {c}");
            };
            let pipeline = Pipeline::parse(steps).unwrap();
            let join = |record: &Vec<String>| -> Result<String, String> {
                columns
                    .iter()
                    .map(|&i| pipeline.apply(&record[i]).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|parts| parts.concat())
            };
            let (want, got) = (join(registry), join(insurer));
            *checked.entry(c.to_string()).or_default() += 1;
            if want != got {
                mismatches.push(format!("{c}: registry {want:?} insurer {got:?}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(8)]
    );
    // Every notation kind was exercised.
    for kind in [
        "surname_kanji:variant-kanji",
        "kana_name:hiragana",
        "kana_name:half-width",
        "kana_name:joined-no-space",
        "kana_name:joined-ascii-space",
        "kana_name:joined-full-width-space",
        "date_of_birth:slashes",
        "date_of_birth:slashes-unpadded",
        "date_of_birth:compact",
        "date_of_birth:full-width",
        "date_of_birth:era-kanji",
        "date_of_birth:era-letter",
        "sex:kanji",
        "sex:digit",
        "postcode:no-hyphen",
        "address:hyphens",
        "address:full-width-digits",
        "address:full-width-hyphens",
        "address:kanji-chome",
    ] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 10,
            "{kind}: {checked:?}"
        );
    }
}

#[test]
fn latin_notation_errors_normalise_away() {
    let mut config = SynthConfig::new(Scenario::RegistryInsurer, Locale::Latin, 10_000, 1.0, 4);
    config.corruption.date_format = 0.5;
    config.corruption.sex_format = 0.5;
    let mut sink = Collect::default();
    Generator::new(config).unwrap().run(&mut sink).unwrap();
    let date = Pipeline::parse(&["date"]).unwrap();
    let sex = Pipeline::parse(&["sex"]).unwrap();
    let mut checked: HashMap<String, usize> = HashMap::new();
    let mut mismatches = Vec::new();
    for truth in &sink.truth {
        let Truth::Insurer(t) = truth else {
            panic!("pair truth")
        };
        let Some(registry_id) = &t.registry_record_id else {
            continue;
        };
        let registry = &sink.registry[registry_id];
        let insurer = &sink.insurer[&t.insurer_record_id];
        for c in &t.corruptions {
            let (column, pipeline) = match c.field {
                "date_of_birth" => (10, &date),
                "sex" => (11, &sex),
                _ => continue,
            };
            *checked.entry(c.to_string()).or_default() += 1;
            let want = pipeline.apply(&registry[column]).map_err(|e| e.to_string());
            let got = pipeline.apply(&insurer[column]).map_err(|e| e.to_string());
            // FIXME(encoding): the `date` step reads Japanese notations and ISO-like orders
            // only; day-first (15/07/1981) and month names (5 jul 1982) are rejected today, so
            // Latin schemas must declare such a format. Asserting today's behaviour.
            if matches!(c.kind, "day-first" | "month-name") {
                if got.is_ok() {
                    mismatches.push(format!("{c}: now accepted as {got:?}: update this test"));
                }
                continue;
            }
            if want != got {
                mismatches.push(format!("{c}: registry {want:?} insurer {got:?}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(8)]
    );
    assert_eq!(checked.len(), 7, "{checked:?}");
}
