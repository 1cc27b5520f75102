//! Properties of whole generated data sets: determinism, ground truth consistent with the
//! records, realised rates, and configuration errors.
// Test code throughout (helpers and proptest bodies included, which clippy.toml's
// allow-unwrap-in-tests does not see as tests): a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use blindlink_encoding::normalise::my_number;
use blindlink_synth::{
    Generator, Locale, Outcome, OutputFile, RecordSink, Scenario, SynthConfig, SynthStats, Truth,
    WrongPersonKind, columns,
};

#[derive(Default)]
struct Collect {
    files: HashMap<&'static str, Vec<Vec<String>>>,
    truth: Vec<Truth>,
}

impl RecordSink for Collect {
    type Error = Infallible;
    fn record(&mut self, file: OutputFile, fields: &[String]) -> Result<(), Infallible> {
        self.files
            .entry(file.file_name())
            .or_default()
            .push(fields.to_vec());
        Ok(())
    }
    fn truth(&mut self, truth: &Truth) -> Result<(), Infallible> {
        self.truth.push(truth.clone());
        Ok(())
    }
}

fn generate(config: SynthConfig) -> (Collect, SynthStats) {
    let mut sink = Collect::default();
    let stats = Generator::new(config).unwrap().run(&mut sink).unwrap();
    (sink, stats)
}

fn ja(persons: u64, seed: u64) -> SynthConfig {
    SynthConfig::new(
        Scenario::RegistryInsurer,
        Locale::Japanese,
        persons,
        0.8,
        seed,
    )
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let (a, _) = generate(ja(5000, 3));
    let (b, _) = generate(ja(5000, 3));
    let (c, _) = generate(ja(5000, 4));
    assert_eq!(a.files, b.files);
    assert_eq!(a.truth, b.truth);
    assert_ne!(a.files["registry.csv"], c.files["registry.csv"]);
}

#[test]
fn pinned_first_rows() {
    let (sink, stats) = generate(ja(20, 1));
    let joined = |row: &Vec<String>| row.join(",");
    assert_eq!(
        joined(&sink.files["registry.csv"][0]),
        "R1773279345,381337291027,高松,勝太郎,タカマツ,カツタロウ,1990-04-17,M,294-5532,千葉県,印西市,東原町1丁目17番7号"
    );
    assert_eq!(
        joined(&sink.files["insurer.csv"][0]),
        "I0144576809,652273503339,畠山,光裕,ハタケヤマ,ミツヒロ,1981-01-20,M,019-3462,岩手県,気仙郡住田町,八百屋町5丁目3番29号"
    );
    assert_eq!(
        sink.truth[0].fields().join(","),
        "I0144576809,1,R7651004749,correct,1,"
    );
    assert_eq!(stats.first_records, 20);
    assert_eq!(stats.second_records, 19);
}

#[test]
fn registry_numbers_are_valid_and_unique() {
    let (sink, _) = generate(ja(20_000, 9));
    let registry = &sink.files["registry.csv"];
    let mut seen = HashSet::new();
    for row in registry {
        assert_eq!(
            my_number::normalise(&row[1]).as_deref(),
            Ok(row[1].as_str())
        );
        assert!(seen.insert(row[1].clone()), "duplicate {}", row[1]);
        assert_eq!(
            row.len(),
            columns(
                Locale::Japanese,
                OutputFile::Registry,
                Scenario::RegistryInsurer
            )
            .len()
        );
    }
}

#[test]
fn truth_agrees_with_the_records() {
    let (sink, stats) = generate(ja(40_000, 5));
    let registry: HashMap<&str, &Vec<String>> = sink.files["registry.csv"]
        .iter()
        .map(|r| (r[0].as_str(), r))
        .collect();
    let by_number: HashMap<&str, &Vec<String>> = sink.files["registry.csv"]
        .iter()
        .map(|r| (r[1].as_str(), r))
        .collect();
    let insurer: HashMap<&str, &Vec<String>> = sink.files["insurer.csv"]
        .iter()
        .map(|r| (r[0].as_str(), r))
        .collect();
    assert_eq!(sink.truth.len(), insurer.len());
    let mut counts: HashMap<Outcome, u64> = HashMap::new();
    for truth in &sink.truth {
        let Truth::Insurer(t) = truth else {
            panic!("pair truth in registry-insurer")
        };
        *counts.entry(t.outcome).or_default() += 1;
        let record = insurer[t.insurer_record_id.as_str()];
        let number = &record[1];
        match t.outcome {
            Outcome::Correct => {
                let own = registry[t.registry_record_id.as_deref().unwrap()];
                assert_eq!(&own[1], number);
            }
            Outcome::KeyingError => {
                let err = my_number::normalise(number).unwrap_err().to_string();
                assert!(err.starts_with("my number check digit is"), "{err}");
            }
            Outcome::Unregistered => {
                assert_eq!(t.registry_record_id, None);
                assert!(!by_number.contains_key(number.as_str()));
                assert!(my_number::normalise(number).is_ok());
            }
            Outcome::WrongPerson(kind) => {
                let own = registry[t.registry_record_id.as_deref().unwrap()];
                let other = by_number[number.as_str()];
                assert_ne!(own[0], other[0]);
                assert_ne!(t.number_owner_person_id, Some(t.person_id));
                match kind {
                    // Same kana name and sex (kanji may differ: 昭夫 and 昭雄 are both アキオ).
                    WrongPersonKind::SameName => {
                        assert_eq!(
                            (&own[4], &own[5], &own[7]),
                            (&other[4], &other[5], &other[7])
                        )
                    }
                    // Same surname and address.
                    WrongPersonKind::Family => {
                        assert_eq!((&own[2], &own[9..]), (&other[2], &other[9..]))
                    }
                    WrongPersonKind::Unrelated => {}
                }
            }
        }
    }
    let insured = stats.second_records as f64;
    let share = |o: Outcome| counts.get(&o).copied().unwrap_or(0) as f64 / insured;
    let wrong: f64 = [
        WrongPersonKind::SameName,
        WrongPersonKind::Family,
        WrongPersonKind::Unrelated,
    ]
    .into_iter()
    .map(|k| share(Outcome::WrongPerson(k)))
    .sum();
    // Defaults: 1% wrong-person links, 0.5% keying errors, 1% unregistered.
    assert!(
        (0.007..0.013).contains(&wrong),
        "wrong-person share {wrong}"
    );
    assert!(
        share(Outcome::WrongPerson(WrongPersonKind::SameName)) > 0.001,
        "{counts:?}"
    );
    assert!(
        (0.003..0.007).contains(&share(Outcome::KeyingError)),
        "{counts:?}"
    );
    assert!(
        (0.007..0.013).contains(&share(Outcome::Unregistered)),
        "{counts:?}"
    );
    let corrupted = stats.corrupted_records as f64 / insured;
    assert!(
        (0.12..0.25).contains(&corrupted),
        "corrupted share {corrupted}"
    );
}

#[test]
fn latin_identifiers_follow_luhn_and_keying_errors_break_it() {
    fn luhn_ok(digits: &str) -> bool {
        let sum: u32 = digits
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }
    let config = SynthConfig::new(Scenario::RegistryInsurer, Locale::Latin, 20_000, 0.8, 2);
    let (sink, _) = generate(config);
    for row in &sink.files["registry.csv"] {
        assert!(luhn_ok(&row[1]), "{row:?}");
        assert_eq!(row[1].len(), 9);
    }
    let insurer: HashMap<&str, &Vec<String>> = sink.files["insurer.csv"]
        .iter()
        .map(|r| (r[0].as_str(), r))
        .collect();
    let mut keying = 0;
    for truth in &sink.truth {
        let Truth::Insurer(t) = truth else { panic!() };
        let ok = luhn_ok(&insurer[t.insurer_record_id.as_str()][1]);
        assert_eq!(ok, t.outcome != Outcome::KeyingError, "{t:?}");
        keying += usize::from(!ok);
    }
    assert!(keying > 20);
}

#[test]
fn two_hospitals_share_persons_but_no_identifier() {
    let config = SynthConfig::new(Scenario::TwoHospitals, Locale::Japanese, 10_000, 0.5, 8);
    let (sink, stats) = generate(config);
    let a = &sink.files["hospital_a.csv"];
    let b = &sink.files["hospital_b.csv"];
    let header = columns(
        Locale::Japanese,
        OutputFile::HospitalA,
        Scenario::TwoHospitals,
    );
    assert!(!header.contains(&"my_number"));
    assert!(a.iter().chain(b).all(|r| r.len() == header.len()));
    // Half in both, a quarter in each alone.
    assert!(
        (4700..5300).contains(&sink.truth.len()),
        "{}",
        sink.truth.len()
    );
    assert_eq!(stats.first_records as usize, a.len());
    let a_ids: HashMap<&str, &Vec<String>> = a.iter().map(|r| (r[0].as_str(), r)).collect();
    let b_ids: HashMap<&str, &Vec<String>> = b.iter().map(|r| (r[0].as_str(), r)).collect();
    for truth in &sink.truth {
        let Truth::Pair(p) = truth else { panic!() };
        let (ra, rb) = (
            a_ids[p.hospital_a_record_id.as_str()],
            b_ids[p.hospital_b_record_id.as_str()],
        );
        if p.hospital_a_corruptions.is_empty() && p.hospital_b_corruptions.is_empty() {
            assert_eq!(ra[1..], rb[1..]);
        }
    }
}

#[test]
fn configuration_errors() {
    fn check(config: SynthConfig, expected: &str) {
        assert_eq!(Generator::new(config).unwrap_err().to_string(), expected);
    }
    let mut c = ja(10, 1);
    c.corruption.kana_variant = 1.5;
    check(
        c,
        "kana-variant rate is 1.5, expected a value between 0 and 1",
    );
    let mut c = ja(10, 1);
    c.overlap = -0.1;
    check(c, "overlap rate is -0.1, expected a value between 0 and 1");
    let mut c = ja(10, 1);
    c.link_errors.wrong_family = 0.6;
    c.link_errors.keying_error = 0.6;
    check(
        c,
        "wrong-person and keying-error rates add up to 1.206, more than 1",
    );
    check(
        ja(0, 1),
        "0 persons is outside 1..=10000000000 for this locale",
    );
    let c = SynthConfig::new(
        Scenario::RegistryInsurer,
        Locale::Latin,
        200_000_000,
        0.5,
        1,
    );
    check(
        c,
        "200000000 persons is outside 1..=100000000 for this locale",
    );
}
