//! `blindlink split`: one pass writes each shard's rows to its own file, and a shard run that
//! reads its own file keeps exactly the records it keeps from the whole file.

use blindlink_cli::commands::party::{PartyCommand, PartyConfig, load_party};
use blindlink_party::{InputSource, Shard};

use crate::support::{PeerDir, blindlink};

/// A party's records as a shard run keeps them: its ids and its first match key's values,
/// and its input counts.
fn shard_records(
    dir: &PeerDir,
    party: &str,
    shard: Shard,
    csv: Option<&std::path::Path>,
) -> (Vec<String>, Vec<Option<Vec<u8>>>, u64, u64) {
    let command = if party == dir.server {
        PartyCommand::Serve
    } else {
        PartyCommand::Link
    };
    let mut config = PartyConfig::load(&dir.config(party), command).unwrap();
    config.shard = Some(shard);
    if let Some(csv) = csv {
        config.input = InputSource::Csv(csv.to_path_buf());
    }
    let loaded = load_party(config).unwrap();
    let records = loaded.records;
    (
        records.ids,
        records.match_keys[0].keys.clone(),
        records.rows_read,
        records.match_keys[0].keyless,
    )
}

#[test]
fn split_files_give_each_shard_the_records_of_the_whole_file() {
    let dir = PeerDir::registry_insurer(300);
    dir.set_mode("exact");
    let out = dir.path("split");
    for party in [dir.server, dir.client] {
        let config = dir.config(party);
        blindlink(&[
            "split",
            "--quiet",
            "--shards",
            "3",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        let (mut rows, mut keyless, mut lines) = (0, 0, 0);
        for index in 0..3 {
            let shard = Shard::new(index, 3).unwrap();
            let file = out.join(format!("{party}.shard-{index}-of-3.csv"));
            let text = std::fs::read_to_string(&file).unwrap();
            lines += text.lines().count() - 1;
            let whole = shard_records(&dir, party, shard, None);
            let alone = shard_records(&dir, party, shard, Some(&file));
            assert_eq!(alone.0, whole.0, "{party} shard {index}: ids");
            assert_eq!(alone.1, whole.1, "{party} shard {index}: keys");
            assert_eq!(alone.2, whole.2, "{party} shard {index}: rows read");
            assert_eq!(alone.3, whole.3, "{party} shard {index}: keyless");
            assert!(!alone.0.is_empty(), "{party} shard {index} is empty");
            rows += alone.2;
            keyless += alone.3;
        }
        let unsharded = load_party(
            PartyConfig::load(
                &dir.config(party),
                if party == dir.server {
                    PartyCommand::Serve
                } else {
                    PartyCommand::Link
                },
            )
            .unwrap(),
        )
        .unwrap()
        .records;
        assert_eq!(rows, unsharded.rows_read, "{party}");
        assert_eq!(lines as u64, unsharded.rows_read, "{party}");
        assert_eq!(keyless, unsharded.match_keys[0].keyless, "{party}");
    }
}

#[test]
fn bad_split_arguments_say_what_is_wrong() {
    let dir = PeerDir::registry_insurer(20);
    let config = dir.config(dir.server);
    let config = config.to_str().unwrap();
    let out = dir.path("split");
    let out = out.to_str().unwrap();
    let check = |shards: &str, config: &str, expected: &str| {
        let got = blindlink(&[
            "split", "--quiet", "--shards", shards, "--config", config, "--out", out,
        ]);
        assert_eq!(
            got,
            Err(expected.to_owned()),
            "--shards {shards} --config {config}"
        );
    };
    check(
        "0",
        config,
        "--shards 0: the shard count is 0; it must be at least 1",
    );
    check(
        "70000",
        config,
        "--shards 70000: the shard count 70000 is over the limit of 65536",
    );
    check(
        "2000",
        config,
        "--shards 2000: split writes one file per shard and keeps them all open; at most 1024",
    );
    let missing = dir.path("nowhere.toml");
    let missing = missing.to_str().unwrap();
    let got = blindlink(&[
        "split", "--quiet", "--shards", "2", "--config", missing, "--out", out,
    ])
    .unwrap_err();
    assert!(
        got.starts_with(&format!("cannot read config {missing}: ")),
        "{got}"
    );
    // Nothing was written by the refused runs.
    assert!(!dir.path("split").exists());
}

#[test]
fn shard_selections_count_records_and_rows_as_the_unsharded_run() {
    // validate, with rows whose sex the tokenizer rejects: each shard finds its own, so a
    // shard's `total` is the input's rows (which every shard knows), not a count of records
    // (which would need the other shards' rows tokenized).
    let dir = PeerDir::registry_insurer(120);
    let csv_path = dir.path("data/insurer.csv");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header = reader.headers().unwrap().clone();
    let sex = header.iter().position(|h| h == "sex").unwrap();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    for i in [0, 3, 6, 9, 12, 15] {
        let mut row: Vec<String> = rows[i].iter().map(str::to_owned).collect();
        row[sex] = "X".to_owned();
        rows[i] = csv::StringRecord::from(row);
    }
    let mut writer = csv::Writer::from_path(&csv_path).unwrap();
    writer.write_record(&header).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();
    dir.replace(
        dir.client,
        "id_column = \"record_id\"",
        "id_column = \"record_id\"\ninvalid_rows = \"reject\"",
    );
    let load = |shard: Option<Shard>| {
        let mut config = PartyConfig::load(&dir.config(dir.client), PartyCommand::Link).unwrap();
        config.shard = shard;
        load_party(config).unwrap()
    };
    let whole = load(None);
    let rejected = whole.records.rejects.as_ref().unwrap().rows.len();
    assert_eq!(rejected, 6);
    let (mut kept, mut rejects) = (0, 0);
    for index in 0..3 {
        let party = load(Some(Shard::new(index, 3).unwrap()));
        let selection = party.shard_selection.unwrap();
        assert_eq!(selection.kept, party.records.ids.len());
        assert_eq!(
            selection.total as u64, whole.records.rows_read,
            "shard {index}: the input's rows"
        );
        kept += selection.kept;
        rejects += party.records.rejects.as_ref().map_or(0, |r| r.rows.len());
    }
    assert_eq!(kept, whole.records.ids.len());
    assert_eq!(kept + rejected, rows.len());
    assert_eq!(rejects, rejected);
}
