//! `validate` with Fellegi–Sunter scoring end to end over loopback mutual TLS, on a schema
//! whose fields have names no code knows (`family`, `given`, `dob`, `gender`, `addr`): the
//! date-of-birth veto comes from the field's token kind, not its name, so a link whose date
//! of birth differs is flagged while a right-person link is not; the comparing side writes
//! `match_probability` / `match_weight`, `model.json` and `explanations.csv`, warns about the
//! fields that got default levels, and `blindlink explain` draws a flagged pair.

use std::collections::HashMap;

use blindlink_cli::commands::party::PartyCommand;
use blindlink_protocol::LinkStatus;
use blindlink_protocol::fellegi_sunter::FellegiSunterModel;

use crate::support::{PeerDir, blindlink, link_to, serve_while};

/// The example's normalisations, under new names; `addr` declares its levels, the others
/// take their token kind's.
const SCHEMA: &str = r#"version = 1
[filter]
bits = 1280
layout = "per-field"

[[field]]
column = "family"
bits = 256
normalise = ["nfkc", "halfwidth-kana", "katakana", "long-vowel-fold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 20

[[field]]
column = "given"
bits = 256
normalise = ["nfkc", "halfwidth-kana", "katakana", "long-vowel-fold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 20

[[field]]
column = "dob"
bits = 256
normalise = ["date"]
tokens = { kind = "exact" }
bits_per_token = 40

[[field]]
column = "gender"
bits = 256
normalise = ["sex"]
tokens = { kind = "exact" }
bits_per_token = 40

[[field]]
column = "addr"
bits = 256
normalise = ["nfkc", "itaiji", "drop-postcode", "drop-prefecture", "jp-address", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 10
levels = [
  { label = "same", min_dice = 1.0 },
  { label = "near", min_dice = 0.8 },
  { label = "far", min_dice = 0.0 },
]
"#;

const COLUMNS: &str = "[input.combined_columns]\n\
    family = [\"surname_kana\"]\n\
    given = [\"given_name_kana\"]\n\
    dob = [\"date_of_birth\"]\n\
    gender = [\"sex\"]\n\
    addr = [\"prefecture\", \"city\", \"address\"]\n\
    name_kana = [\"surname_kana\", \"given_name_kana\"]\n";

fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Changes the date of birth of the first insurer record that truly is its number's holder
/// and returns its id, and the id of another right-person record left as it is.
fn plant_other_dob(peers: &PeerDir) -> (String, String) {
    let (_, truth) = read_csv(&peers.path("data/truth.csv"));
    let right: Vec<&String> = truth
        .iter()
        .filter(|r| r[3] == "correct" && r[5].is_empty())
        .map(|r| &r[0])
        .collect();
    let (planted, kept) = (right[0].clone(), right[1].clone());
    let path = peers.path("data/insurer.csv");
    let (header, mut rows) = read_csv(&path);
    let dob = header.iter().position(|h| h == "date_of_birth").unwrap();
    let row = rows.iter_mut().find(|r| r[0] == planted).unwrap();
    row[dob] = if row[dob] == "1947-11-27" {
        "1964-08-08"
    } else {
        "1947-11-27"
    }
    .to_owned();
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();
    (planted, kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_date_of_birth_is_flagged_whatever_the_field_is_called() {
    let peers = PeerDir::registry_insurer(600);
    std::fs::write(peers.path("schema.toml"), SCHEMA).unwrap();
    for party in [peers.server, peers.client] {
        peers.edit(party, |text| {
            let start = text.find("[input.combined_columns]").unwrap();
            let end = start + text[start..].find("\n\n").unwrap() + 1;
            format!("{}{COLUMNS}{}", &text[..start], &text[end..])
        });
    }
    let (planted, kept) = plant_other_dob(&peers);
    let server = peers.load(peers.server, PartyCommand::Serve);
    let client = peers.load(peers.client, PartyCommand::Link);
    let warning = "warning: validate: schema schema.toml declares no comparison levels for \
                   family, given, dob, gender; they get their token kind's defaults (family: \
                   exact / dice>=0.9 / dice>=0.7 / different; given: exact / dice>=0.9 / \
                   dice>=0.7 / different; dob: exact / different (veto); gender: exact / \
                   different (veto))";
    let shown = |w: &String| w.replace(&peers.path("").display().to_string(), "");
    assert_eq!(
        client.1.warnings.iter().map(shown).collect::<Vec<_>>(),
        [warning]
    );
    let (served, linked) = serve_while(&server, |address| link_to(&client, address)).await;
    assert_eq!(served.unwrap().len(), 1);
    let linked = linked.unwrap();

    // The insurer compares: the planted pair is flagged by the dob veto, the kept one linked.
    let status: HashMap<&str, LinkStatus> = linked
        .outcome
        .rows
        .iter()
        .map(|r| (r.local_id.as_str(), r.status))
        .collect();
    assert_eq!(status[planted.as_str()], LinkStatus::SuspectedWrongPerson);
    assert_eq!(status[kept.as_str()], LinkStatus::Linked);
    // Right-person links flagged: at most 0.2 % (issue 13), the planted one aside.
    let (_, truth) = read_csv(&peers.path("data/truth.csv"));
    let right: Vec<&str> = truth
        .iter()
        .filter(|r| r[3] == "correct" && r[0] != planted)
        .map(|r| r[0].as_str())
        .collect();
    let false_flags = right
        .iter()
        .filter(|id| status.get(**id) == Some(&LinkStatus::SuspectedWrongPerson))
        .count();
    assert!(
        false_flags * 500 <= right.len(),
        "{false_flags} of {} right-person links flagged",
        right.len()
    );

    // Outputs of the comparing side.
    let out = |f: &str| peers.path(&format!("out/{}/{f}", peers.client));
    assert_eq!(
        peers.outputs(peers.client),
        [
            "explanations.csv",
            "ledger.json",
            "links.csv",
            "model.json",
            "report.txt"
        ]
    );
    assert_eq!(
        peers.outputs(peers.server),
        ["ledger.json", "links.csv", "report.txt"]
    );
    let (header, links) = read_csv(&out("links.csv"));
    assert_eq!(
        header,
        [
            "local_record_id",
            "link_id",
            "mode",
            "score",
            "status",
            "key",
            "match_probability",
            "match_weight"
        ]
    );
    let row = |id: &str| links.iter().find(|r| r[0] == id).unwrap().clone();
    let (bad, good) = (row(&planted), row(&kept));
    let number = |s: &str| s.parse::<f64>().unwrap();
    assert!(
        number(&good[6]) >= 0.5 && number(&good[7]) > 0.0,
        "{good:?}"
    );
    assert!(number(&bad[7]) < number(&good[7]), "{bad:?} {good:?}");
    let model = FellegiSunterModel::from_json(&std::fs::read_to_string(out("model.json")).unwrap())
        .unwrap();
    let names: Vec<&str> = model.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["family", "given", "dob", "gender", "addr"]);
    let addr: Vec<&str> = model.fields[4]
        .levels
        .iter()
        .map(|l| l.label.as_str())
        .collect();
    assert_eq!(addr, ["same", "near", "far"]);
    let (_, explanations) = read_csv(&out("explanations.csv"));
    let dob = explanations
        .iter()
        .find(|r| r[0] == planted && r[2] == "dob")
        .unwrap();
    assert_eq!((dob[3].as_str(), dob[7].as_str()), ("different", "true"));
    let report = std::fs::read_to_string(out("report.txt")).unwrap();
    assert!(
        report.contains(&format!("  {planted} (link "))
            && report.contains("field 'dob' is at level 'different', which vetoes"),
        "{report}"
    );
    assert!(report.contains("declares no comparison levels for family, given, dob, gender"));
    // The registry learns one probability and flag per pair, no weight, no model.
    let (_, theirs) = read_csv(&peers.path(&format!("out/{}/links.csv", peers.server)));
    let theirs = theirs.iter().find(|r| r[1] == bad[1]).unwrap();
    assert_eq!(theirs[4], "suspected-wrong-person");
    assert_eq!(
        (theirs[6].as_str(), theirs[7].as_str()),
        (bad[6].as_str(), "")
    );

    // blindlink explain: the waterfall of the planted pair.
    let svg = peers.path("planted.svg");
    let dir = out("");
    blindlink(&[
        "explain",
        "--out-dir",
        dir.to_str().unwrap(),
        "--pair",
        &planted,
        "--svg",
        svg.to_str().unwrap(),
    ])
    .unwrap();
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("dob: different"),
        "{svg}"
    );
    assert_eq!(
        blindlink(&[
            "explain",
            "--out-dir",
            dir.to_str().unwrap(),
            "--pair",
            &kept
        ])
        .unwrap_err(),
        format!(
            "pair '{kept}' is not in {} (it lists the flagged pairs of a validate run, by local \
             record id or link id)",
            out("explanations.csv").display()
        )
    );
}

/// `examples/validate-en/` (papers/validation.md §7, the other column names and notations):
/// its configs load and name its schema, which parses.
#[test]
fn the_validate_en_example_loads() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/validate-en");
    for (party, command) in [
        ("registry", PartyCommand::Serve),
        ("insurer", PartyCommand::Link),
    ] {
        let config = blindlink_cli::commands::party::PartyConfig::load(
            &dir.join(format!("{party}.toml")),
            command,
        )
        .unwrap();
        assert_eq!(config.schema, dir.join("schema.toml"), "{party}");
    }
    let schema = std::fs::read_to_string(dir.join("schema.toml")).unwrap();
    blindlink_encoding::SchemaDocument::parse(&schema).unwrap();
}
