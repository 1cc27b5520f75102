//! The notation errors are notation only: after the encoder's normalisation steps, every
//! corrupted insurer field equals the registry's canonical field — except the kinds that change
//! the value itself (a kana typo, a long-vowel mark, a missing prefecture), which linkage must
//! absorb by similarity rather than by normalisation.
// Test code throughout (helpers and proptest bodies included, which clippy.toml's
// allow-unwrap-in-tests does not see as tests): a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;

use blindlink_encoding::normalise::Pipeline;
use blindlink_synth::{
    Corruption, Generator, Locale, OutputFile, RecordSink, Scenario, SynthConfig, Truth,
};

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

/// Compares the corrupted fields of every insurer record that has a registry match: for each
/// corruption, `checks` names the columns and the normalisation steps to apply to both sides
/// (none to skip it). Returns how many of each corruption were compared and every disagreement.
fn compare_corrupted_fields(
    config: SynthConfig,
    checks: impl Fn(&Corruption) -> Vec<(&'static [usize], &'static [&'static str])>,
) -> (HashMap<String, usize>, Vec<String>) {
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
            for (columns, steps) in checks(c) {
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
                    mismatches.push(format!(
                        "{c} under {steps:?}: registry {want:?} insurer {got:?}"
                    ));
                }
            }
        }
    }
    (checked, mismatches)
}

/// No disagreement, and each of `kinds` compared more than ten times.
fn assert_all_agree(checked: &HashMap<String, usize>, mismatches: &[String], kinds: &[&str]) {
    assert!(
        mismatches.is_empty(),
        "{} mismatches, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(8)]
    );
    for kind in kinds {
        assert!(
            checked.get(*kind).copied().unwrap_or(0) > 10,
            "{kind}: {checked:?}"
        );
    }
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
    let (checked, mismatches) = compare_corrupted_fields(config, |c| {
        if matches!(c.kind, "typo" | "long-vowel" | "missing") || c.field == "my_number" {
            return Vec::new();
        }
        let Some(comparison) = comparison(c.field) else {
            panic!("no comparison for {c}");
        };
        vec![comparison]
    });
    // Every notation kind was exercised.
    let kinds = [
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
    ];
    assert_all_agree(&checked, &mismatches, &kinds);
}

/// The en registry writes dates of birth in ISO form; the insurer's day-first dates agree
/// under `date-dmy` (the declared UK order), and its other notations, month names included,
/// under `date` as well (`date` itself rejects a day-first date, naming `date-dmy`).
#[test]
fn latin_notation_errors_normalise_away() {
    const BIRTH: &[usize] = &[10];
    const SEX: &[usize] = &[11];
    let mut config = SynthConfig::new(Scenario::RegistryInsurer, Locale::Latin, 10_000, 1.0, 4);
    config.corruption.date_format = 0.5;
    config.corruption.sex_format = 0.5;
    let (checked, mismatches) = compare_corrupted_fields(config, |c| match (c.field, c.kind) {
        ("date_of_birth", "day-first") => vec![(BIRTH, &["date-dmy"][..])],
        ("date_of_birth", _) => vec![(BIRTH, &["date"][..]), (BIRTH, &["date-dmy"][..])],
        ("sex", _) => vec![(SEX, &["sex"][..])],
        _ => Vec::new(),
    });
    let kinds = [
        "date_of_birth:day-first",
        "date_of_birth:month-name",
        "date_of_birth:compact",
        "date_of_birth:slashes",
    ];
    assert_all_agree(&checked, &mismatches, &kinds);
    assert_eq!(checked.len(), 7, "{checked:?}");
}
