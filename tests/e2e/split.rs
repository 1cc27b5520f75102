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

#[test]
fn input_replaces_the_config_csv_and_a_split_file_must_be_the_runs_shard() {
    let dir = PeerDir::registry_insurer(300);
    dir.set_mode("exact");
    // One key: a sharded exact run without stages.
    dir.edit(dir.client, |text| {
        let start = text
            .find("[[input.match_key]]\nname = \"kana+dob+sex\"")
            .unwrap();
        let end = text.find("[output]").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    });
    let config = dir.config(dir.client);
    let config = config.to_str().unwrap();
    let out = dir.path("split");
    blindlink(&[
        "split",
        "--quiet",
        "--shards",
        "2",
        "--config",
        config,
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let file = |i: u32| out.join(format!("insurer.shard-{i}-of-2.csv"));
    // The records of a run on shard I's file through --input are those of shard I of the
    // whole input, under one config.
    for index in 0..2 {
        let shard = Shard::new(u64::from(index), 2).unwrap();
        let load = |input: Option<&std::path::Path>| {
            let mut config =
                PartyConfig::load(&dir.config(dir.client), PartyCommand::Link).unwrap();
            config.shard = Some(shard);
            if let Some(input) = input {
                blindlink_cli::commands::party::override_input(&mut config, input).unwrap();
            }
            let party = load_party(config).unwrap();
            (party.records.ids, party.records.rows_read)
        };
        let alone = load(Some(&file(index)));
        assert_eq!(alone, load(None), "shard {index}");
        assert!(!alone.0.is_empty());
    }
    let link = |args: &[&str]| {
        let mut argv = vec!["link", "--quiet", "--config", config];
        argv.extend_from_slice(args);
        blindlink(&argv).unwrap_err()
    };
    let shard_1 = file(1);
    let shard_1 = shard_1.to_str().unwrap();
    let check = |args: &[&str], expected: String| assert_eq!(link(args), expected, "{args:?}");
    // Another shard's file, or a shard's file in an unsharded run.
    check(
        &["--shard", "0/2", "--input", shard_1],
        format!(
            "{config}: [input] csv {shard_1} is the split for shard 1/2, and this run is shard 0/2"
        ),
    );
    check(
        &["--input", shard_1],
        format!(
            "{config}: [input] csv {shard_1} is the split for shard 1/2, and this run has no \
             shard (give --shard 1/2)"
        ),
    );
    // A file named as shard 0's that holds shard 1's records.
    let renamed = dir.path("elsewhere/insurer.shard-0-of-2.csv");
    std::fs::create_dir_all(renamed.parent().unwrap()).unwrap();
    std::fs::copy(shard_1, &renamed).unwrap();
    let rows = std::fs::read_to_string(shard_1).unwrap().lines().count() - 1;
    check(
        &["--shard", "0/2", "--input", renamed.to_str().unwrap()],
        format!(
            "{config}: [input] csv {}: {rows} of its {rows} rows are records of other shards \
             than 0/2: the file is not this shard's split (blindlink split --shards 2 writes it)",
            renamed.display()
        ),
    );
    // A shard's own file with no record (a bucket no record falls in, as a fuzzy key with
    // fewer values than shards leaves) is a valid empty session's input; the same header-only
    // file under another name is an empty input, refused.
    let header = std::fs::read_to_string(shard_1).unwrap();
    let header = header.lines().next().unwrap();
    for (name, expected) in [
        ("empty/insurer.shard-1-of-2.csv", Ok(0)),
        (
            "empty/insurer.csv",
            Err(
                "no records after the header row; refusing to link an empty set (a session \
                 would still tell the peer this side's set size)",
            ),
        ),
    ] {
        let path = dir.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{header}\n")).unwrap();
        let mut config = PartyConfig::load(&dir.config(dir.client), PartyCommand::Link).unwrap();
        config.shard = Some(Shard::new(1, 2).unwrap());
        blindlink_cli::commands::party::override_input(&mut config, &path).unwrap();
        let got = load_party(config)
            .map(|party| party.records.ids.len())
            .map_err(|e| format!("{e:#}"));
        match expected {
            Ok(n) => assert_eq!(got, Ok(n), "{name}"),
            Err(reason) => assert_eq!(got, Err(format!("{}: {reason}", path.display())), "{name}"),
        }
    }
    // A missing file is named.
    let missing = dir.path("nowhere.csv");
    let missing = missing.to_str().unwrap();
    let got = link(&["--input", missing]);
    assert!(
        got.starts_with(&format!("cannot read {missing}: ")),
        "{got}"
    );
    // A PostgreSQL input cannot be replaced by a file.
    dir.replace(
        dir.client,
        "csv = \"data/insurer.csv\"",
        "postgres = { url = \"postgresql://blindlink@127.0.0.1:1/none\", table = \"people\", \
         password_env = \"NO_SUCH_PASSWORD\" }",
    );
    check(
        &["--input", shard_1],
        format!(
            "{config}: --input {shard_1}: [input] is a postgres query, and --input replaces a csv \
             input only (give each shard's query its own WHERE clause in its own config, or \
             export the query to csv and name the file in [input] csv)"
        ),
    );
}

#[test]
fn a_split_is_refused_where_the_shard_runs_would_be() {
    let dir = PeerDir::registry_insurer(20);
    dir.set_mode("fuzzy");
    let config = dir.config(dir.server);
    let config = config.to_str().unwrap();
    let out = dir.path("split");
    let got = blindlink(&[
        "split",
        "--quiet",
        "--shards",
        "2",
        "--config",
        config,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        got,
        Err(format!(
            "{config}: cannot run shard 0/2: mode fuzzy has no key that the two records of a \
             person are sure to share; name a coarse blocking key in [shard] key (an \
             [[input.match_key]], e.g. the prefecture), knowing that a true pair whose values \
             of it differ is never compared"
        ))
    );
    assert!(!out.exists());
}
