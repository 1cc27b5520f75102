//! End-to-end tests of `blindlink synth`: files, headers, determinism, pinned output, errors.

use std::path::Path;

use crate::support::blindlink;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn synth(dir: &Path, extra: &[&str]) -> Result<(), String> {
    let out = dir.to_str().unwrap();
    let mut args = vec!["synth", "--out", out];
    args.extend_from_slice(extra);
    blindlink(&args)
}

#[test]
fn registry_insurer_files_have_headers_and_one_truth_row_per_insurer_record() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--persons", "500", "--seed", "3"]).unwrap();
    let registry = read(dir.path(), "registry.csv");
    let insurer = read(dir.path(), "insurer.csv");
    let truth = read(dir.path(), "truth.csv");
    let header = "record_id,my_number,surname_kanji,given_name_kanji,surname_kana,given_name_kana,date_of_birth,sex,postcode,prefecture,city,address";
    assert_eq!(registry.lines().next(), Some(header));
    assert_eq!(insurer.lines().next(), Some(header));
    assert_eq!(
        truth.lines().next(),
        Some(
            "insurer_record_id,person_id,registry_record_id,outcome,number_owner_person_id,corrupted_fields"
        )
    );
    assert_eq!(insurer.lines().count(), truth.lines().count());
    assert!(registry.lines().count() > 450);
}

#[test]
fn pinned_output_of_a_small_run() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--persons", "20", "--seed", "1"]).unwrap();
    let registry = read(dir.path(), "registry.csv");
    let insurer = read(dir.path(), "insurer.csv");
    let truth = read(dir.path(), "truth.csv");
    assert_eq!(
        registry.lines().nth(1),
        Some(
            "R1773279345,381337291027,高松,勝太郎,タカマツ,カツタロウ,1990-04-17,M,294-5532,千葉県,印西市,東原町1丁目17番7号"
        )
    );
    assert_eq!(
        insurer.lines().nth(1),
        Some(
            "I0144576809,652273503339,畠山,光裕,ハタケヤマ,ミツヒロ,1981-01-20,M,019-3462,岩手県,気仙郡住田町,八百屋町5丁目3番29号"
        )
    );
    assert_eq!(
        truth.lines().nth(1),
        Some("I0144576809,1,R7651004749,correct,1,")
    );
    assert_eq!(
        (
            registry.lines().count(),
            insurer.lines().count(),
            truth.lines().count()
        ),
        (21, 20, 20)
    );
}

#[test]
fn same_arguments_same_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--persons", "3000", "--seed", "11", "--locale", "en"];
    synth(a.path(), &args).unwrap();
    synth(b.path(), &args).unwrap();
    for name in ["registry.csv", "insurer.csv", "truth.csv"] {
        assert_eq!(read(a.path(), name), read(b.path(), name), "{name}");
    }
}

#[test]
fn two_hospitals_have_no_identifier_and_a_pair_truth() {
    let dir = tempfile::tempdir().unwrap();
    synth(
        dir.path(),
        &[
            "--scenario",
            "two-hospitals",
            "--locale",
            "en",
            "--persons",
            "1000",
            "--overlap",
            "0.5",
        ],
    )
    .unwrap();
    let header = "record_id,given_name,surname,street_number,address_1,address_2,suburb,postcode,state,date_of_birth,sex";
    assert_eq!(
        read(dir.path(), "hospital_a.csv").lines().next(),
        Some(header)
    );
    assert_eq!(
        read(dir.path(), "hospital_b.csv").lines().next(),
        Some(header)
    );
    let truth = read(dir.path(), "truth.csv");
    assert_eq!(
        truth.lines().next(),
        Some(
            "hospital_a_record_id,hospital_b_record_id,person_id,hospital_a_corrupted_fields,hospital_b_corrupted_fields"
        )
    );
    assert!((400..600).contains(&truth.lines().count()));
    assert!(!dir.path().join("registry.csv").exists());
}

#[test]
fn bad_arguments_are_reported_and_write_nothing() {
    fn check(extra: &[&str], expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let err = synth(&out, extra).unwrap_err();
        assert_eq!(err, expected);
        assert!(!out.exists(), "{extra:?} created {}", out.display());
    }
    check(
        &["--overlap", "1.5"],
        "invalid synth arguments: overlap rate is 1.5, expected a value between 0 and 1",
    );
    check(
        &["--kanji-variant-rate=-0.5"],
        "invalid synth arguments: kanji-variant rate is -0.5, expected a value between 0 and 1",
    );
    check(
        &["--persons", "0"],
        "invalid synth arguments: 0 persons is outside 1..=10000000000 for this locale",
    );
    check(
        &["--wrong-family-rate", "0.7", "--keying-error-rate", "0.5"],
        "invalid synth arguments: wrong-person and keying-error rates add up to 1.206, more than 1",
    );
}

#[test]
fn an_output_path_that_is_a_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    std::fs::write(&file, "x").unwrap();
    let err = synth(&file, &["--persons", "10"]).unwrap_err();
    let expected = format!("cannot create output directory {}: ", file.display());
    assert!(err.starts_with(&expected), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn help_documents_every_rate_with_its_default() {
    let help = blindlink(&["synth", "--help"]).unwrap_err();
    for (option, default) in [
        ("--kanji-variant-rate", "0.03"),
        ("--kana-variant-rate", "0.05"),
        ("--date-format-rate", "0.05"),
        ("--sex-format-rate", "0.03"),
        ("--address-format-rate", "0.05"),
        ("--wrong-same-name-rate", "0.004"),
        ("--wrong-family-rate", "0.004"),
        ("--wrong-unrelated-rate", "0.002"),
        ("--keying-error-rate", "0.005"),
        ("--unregistered-rate", "0.01"),
    ] {
        let at = help
            .find(option)
            .unwrap_or_else(|| panic!("{option} missing from help"));
        let rest = &help[at..];
        let next_option = rest[2..].find("\n  -").map_or(rest.len(), |i| i + 2);
        assert!(
            rest[..next_option].contains(&format!("[default: {default}]")),
            "{option}: {}",
            &rest[..next_option]
        );
    }
}
