//! End-to-end tests of the data-side operations of `serve` / `link` (issue 11): the output
//! directory is claimed before any session, bad rows are withheld and listed under
//! `invalid_rows = "reject"` (and the good rows link as a clean file's do), era dates outside
//! their era are read under `era_dates = "lenient"`, empty inputs and weak keys are refused
//! before anything is sent, and concurrent runs never share an output directory.

use std::collections::BTreeSet;
use std::path::Path;

use blindlink_cli::commands::party::outputs::claim_output_dir;
use blindlink_cli::commands::party::session::{self, CompletedSession};
use blindlink_cli::commands::party::{PartyCommand, PartyConfig, load_party};

use crate::support::{PeerDir, blindlink, link_to, quick, serve_while};

/// One session between the registry and the insurer (in-process, loopback mTLS).
async fn one_session(setup: &PeerDir) -> (CompletedSession, CompletedSession) {
    let server = setup.load("registry", PartyCommand::Serve);
    let client = setup.load("insurer", PartyCommand::Link);
    let (served, linked) = serve_while(&server, |address| link_to(&client, address)).await;
    let mut served = served.unwrap();
    (served.pop().unwrap(), linked.unwrap())
}

/// (insurer id, registry id, status) of every linked pair.
fn pairs(
    server: &CompletedSession,
    client: &CompletedSession,
) -> BTreeSet<(String, String, String)> {
    let by_link: std::collections::HashMap<&str, &str> = server
        .outcome
        .rows
        .iter()
        .filter_map(|r| Some((r.link_id.as_deref()?, r.local_id.as_str())))
        .collect();
    client
        .outcome
        .rows
        .iter()
        .filter_map(|r| {
            let other = by_link.get(r.link_id.as_deref()?)?;
            Some((
                r.local_id.clone(),
                (*other).to_owned(),
                r.status.name().to_owned(),
            ))
        })
        .collect()
}

/// The insurer's CSV with bad rows added: an era date after its era (line 4), a sex code `X`
/// (line 7), a row with a field too few (line 10), then at the end a repeated id and a row
/// with invalid UTF-8. Returns the lines of the bad rows and the header's field count.
fn add_bad_rows(setup: &PeerDir) -> (Vec<u64>, usize) {
    let path = setup.path("data/insurer.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let with = |id: &str, name: &str, value: &str| -> Vec<String> {
        let mut row: Vec<String> = rows[0].iter().map(str::to_owned).collect();
        row[column("record_id")] = id.to_owned();
        if !name.is_empty() {
            row[column(name)] = value.to_owned();
        }
        row
    };
    let mut short = with("bad-short", "", "");
    short.pop();
    let mut all: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    all.insert(2, with("bad-era", "date_of_birth", "平成32年1月1日"));
    all.insert(5, with("bad-sex", "sex", "X"));
    all.insert(8, short);
    all.push(rows[0].iter().map(str::to_owned).collect());
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for row in &all {
        writer.write_record(row).unwrap();
    }
    let mut bytes = writer.into_inner().unwrap();
    // Invalid UTF-8 in the kana name of one more row.
    let mut last = csv::Writer::from_writer(Vec::new());
    last.write_record(with("bad-utf8", "surname_kana", "QQ"))
        .unwrap();
    let mut last = last.into_inner().unwrap();
    let at = last.windows(2).position(|w| w == b"QQ").unwrap();
    last[at] = 0xff;
    bytes.extend_from_slice(&last);
    std::fs::write(&path, bytes).unwrap();
    let n = all.len() as u64;
    (vec![4, 7, 10, n + 1, n + 2], header.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_withheld_listed_and_the_good_rows_link_as_in_a_clean_file() {
    let setup = PeerDir::registry_insurer(120);
    let (clean_server, clean_client) = one_session(&setup).await;
    let clean = pairs(&clean_server, &clean_client);
    assert!(clean.len() > 20, "{}", clean.len());
    let clean_rows = clean_client.outcome.rows.len();

    let (bad_lines, fields) = add_bad_rows(&setup);
    let csv = setup.path("data/insurer.csv");
    // The default: the first bad row aborts before anything is sent.
    let error =
        load_party(PartyConfig::load(&setup.config("insurer"), PartyCommand::Link).unwrap())
            .map(|_| ())
            .unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        format!(
            "{}:4: field 'date_of_birth': 平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30",
            csv.display()
        )
    );

    setup.replace(
        "insurer",
        "id_column = \"record_id\"",
        "id_column = \"record_id\"\ninvalid_rows = \"reject\"",
    );
    let (server, client) = one_session(&setup).await;
    assert_eq!(
        pairs(&server, &client),
        clean,
        "the good rows link as in the clean file"
    );
    assert_eq!(client.outcome.rows.len(), clean_rows);

    let out = setup.path("out/insurer");
    let rejects: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(out.join("rejects.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().take(4).map(str::to_owned).collect())
        .collect();
    let shown = csv.display().to_string();
    let expected: Vec<Vec<String>> = [
        (
            bad_lines[0],
            "date_of_birth",
            "平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30",
        ),
        (
            bad_lines[1],
            "sex",
            "sex code 'X' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown",
        ),
        (
            bad_lines[2],
            "",
            &format!(
                "the row has {} fields but the header has {fields}",
                fields - 1
            ),
        ),
        (bad_lines[3], "record_id", "REPEATED"),
        (bad_lines[4], "surname_kana", "the value is not valid UTF-8"),
    ]
    .iter()
    .map(|(line, field, reason): &(u64, &str, &str)| {
        vec![
            shown.clone(),
            line.to_string(),
            (*field).to_owned(),
            (*reason).to_owned(),
        ]
    })
    .collect();
    // The repeated id is the first row's.
    let first_id = csv::Reader::from_path(&csv)
        .unwrap()
        .records()
        .next()
        .unwrap()
        .unwrap()[0]
        .to_owned();
    let mut expected = expected;
    expected[3][3] = format!("record id '{first_id}' appears more than once");
    assert_eq!(rejects, expected);

    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let rows_read = clean_rows + 5;
    assert!(
        report.contains(&format!(
            "input: 5 of {rows_read} rows rejected and withheld from the session (invalid_rows = \"reject\"), listed in rejects.csv"
        )),
        "{report}"
    );
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ledger.json")).unwrap()).unwrap();
    assert_eq!(
        ledger["input"],
        serde_json::json!({"rows_read": rows_read, "rows_rejected": 5, "era_dates_read_leniently": 0})
    );

    // Lenient era dates: the 平成32年 row is read as 2020-01-01 and kept.
    setup.replace(
        "insurer",
        "invalid_rows = \"reject\"",
        "invalid_rows = \"reject\"\nera_dates = \"lenient\"",
    );
    let (party, prepared) = setup.load("insurer", PartyCommand::Link);
    assert_eq!(party.records.era_dates_read_leniently, 1);
    assert_eq!(party.records.rejects.as_ref().unwrap().rows.len(), 4);
    assert!(party.records.ids.iter().any(|id| id == "bad-era"));
    assert!(
        prepared.notes.contains(
            &"input: 1 era dates outside their era read as the gregorian date they denote (era_dates = \"lenient\")".to_owned()
        ),
        "{:?}",
        prepared.notes
    );
}

#[test]
fn no_session_starts_when_the_output_dir_is_unusable() {
    let setup = PeerDir::registry_insurer(30);
    // Nothing listens on the configured address: any error but the output's would be about
    // the connection.
    std::fs::write(setup.path("blocker"), b"a file, not a directory").unwrap();
    setup.replace("insurer", "dir = \"out/insurer\"", "dir = \"blocker/out\"");
    let config = setup.config("insurer");
    assert_eq!(
        setup.link().unwrap_err(),
        format!(
            "{}: output.dir: cannot create {}: Not a directory (os error 20)",
            config.display(),
            setup.path("blocker/out").display()
        )
    );
    // serve too, before it listens.
    let registry = setup.config("registry");
    setup.replace("registry", "dir = \"out/registry\"", "dir = \"blocker\"");
    assert_eq!(
        blindlink(&["serve", "--quiet", "--config", registry.to_str().unwrap()]).unwrap_err(),
        format!(
            "{}: output.dir: {} is not a directory",
            registry.display(),
            setup.path("blocker").display()
        )
    );
}

#[test]
fn a_second_run_into_a_locked_output_dir_is_refused_before_connecting() {
    let setup = PeerDir::registry_insurer(30);
    let config = PartyConfig::load(&setup.config("insurer"), PartyCommand::Link).unwrap();
    let out = setup.path("out/insurer");
    let held = claim_output_dir(&config).unwrap();
    assert_eq!(held.dir(), out);
    let busy = format!(
        "{}: output.dir: {} is in use by another blindlink run (it holds {}); wait for it to \
         end or give each concurrent run its own output directory",
        setup.config("insurer").display(),
        out.display(),
        out.join(".blindlink.lock").display()
    );
    assert_eq!(setup.link().unwrap_err(), busy);
    // A refused run leaves the holder's lock file in place: the next run is refused too (it
    // once removed the file, and the third run then locked a fresh one and ran alongside).
    assert!(out.join(".blindlink.lock").exists());
    assert_eq!(setup.link().unwrap_err(), busy);
    assert_eq!(claim_output_dir(&config).unwrap_err().to_string(), busy);
    drop(held);
    // Released: the directory the claim created is gone again (it stayed empty).
    assert!(!out.exists());
    let again = claim_output_dir(&config).unwrap();
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_into_one_output_dir_never_mix_their_files() {
    let setup = PeerDir::registry_insurer(60);
    setup.replace("registry", "max_sessions = 1", "max_sessions = 0");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    setup.replace("insurer", "127.0.0.1:7443", &format!("127.0.0.1:{port}"));
    let server = setup.load("registry", PartyCommand::Serve);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = quick();
    let serving = session::serve(&server.0, &server.1, listener, &options, async {
        let _ = stopped.await;
    });
    let config = setup.config("insurer");
    let runs = async {
        let mut handles = Vec::new();
        for _ in 0..4 {
            let config = config.clone();
            handles.push(tokio::task::spawn_blocking(move || {
                blindlink(&["link", "--quiet", "--config", config.to_str().unwrap()])
            }));
        }
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.unwrap());
        }
        let _ = stop.send(());
        results
    };
    let (served, results) = tokio::join!(serving, runs);
    let served = served.unwrap();
    let out = setup.path("out/insurer");
    let busy = format!(
        "{}: output.dir: {} is in use by another blindlink run (it holds {}); wait for it to \
         end or give each concurrent run its own output directory",
        config.display(),
        out.display(),
        out.join(".blindlink.lock").display()
    );
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    for result in &results {
        if let Err(e) = result {
            assert_eq!(e, &busy);
        }
    }
    assert!(succeeded >= 1, "{results:?}");
    assert_eq!(
        served.len(),
        succeeded,
        "one server session per run that linked"
    );
    // The files left are one session's: the ledger's session, the report's, and the links of
    // the registry's output for that session.
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ledger.json")).unwrap()).unwrap();
    let session_id = ledger["session_id"].as_str().unwrap().to_owned();
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        report.contains(&format!("session {session_id} ")),
        "{report}"
    );
    let link_ids = |path: &Path| -> BTreeSet<String> {
        csv::Reader::from_path(path)
            .unwrap()
            .records()
            .map(|r| r.unwrap()[1].to_owned())
            .filter(|id| !id.is_empty())
            .collect()
    };
    let registry_session = served
        .iter()
        .find(|s| s.ledger.session_id.to_string() == session_id)
        .expect("the insurer's files name a session the registry served");
    let theirs = link_ids(&registry_session.output_dir.join("links.csv"));
    assert!(!theirs.is_empty());
    assert_eq!(link_ids(&out.join("links.csv")), theirs);
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // The insurer compares in validate: its Fellegi–Sunter model and explanations too.
    assert_eq!(
        left,
        [
            "explanations.csv",
            "ledger.json",
            "links.csv",
            "model.json",
            "report.txt"
        ]
    );
}

#[test]
fn empty_inputs_are_refused_before_connecting() {
    let setup = PeerDir::registry_insurer(30);
    let csv = setup.path("data/insurer.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let header = text.lines().next().unwrap().to_owned();
    std::fs::write(&csv, format!("{header}\n")).unwrap();
    assert_eq!(
        setup.link().unwrap_err(),
        format!(
            "{}: no records after the header row; refusing to link an empty set (a session would \
             still tell the peer this side's set size)",
            csv.display()
        )
    );
    std::fs::write(&csv, "").unwrap();
    assert_eq!(
        setup.link().unwrap_err(),
        format!(
            "{}: the file is empty (a header row naming the columns is required)",
            csv.display()
        )
    );
    // Every row rejected: as empty, with the first reason.
    std::fs::write(&csv, format!("{header}\n,\n")).unwrap();
    setup.replace(
        "insurer",
        "id_column = \"record_id\"",
        "id_column = \"record_id\"\ninvalid_rows = \"reject\"",
    );
    let fields = header.split(',').count();
    assert_eq!(
        setup.link().unwrap_err(),
        format!(
            "{}: no records to link: all 1 data rows were rejected (the first on line 2: the row \
             has 2 fields but the header has {fields}); nothing was sent",
            csv.display()
        )
    );
    assert!(!setup.path("out/insurer").exists());
}

#[test]
fn weak_key_files_are_refused_and_keygen_writes_0600() {
    let setup = PeerDir::registry_insurer(30);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(setup.path("linkage.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = setup.path("linkage.key");
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, b"password").unwrap();
    let config = setup.config("insurer");
    assert_eq!(
        setup.link().unwrap_err(),
        format!(
            "{}: linkage.key_file: key file {} holds 8 bytes; a linkage key needs at least 16 \
             (make one with `blindlink keygen`, or set BLINDLINK_ALLOW_WEAK_KEY=1 to use a weak \
             key for tests)",
            config.display(),
            key.display()
        )
    );
    assert!(!setup.path("out/insurer").exists());
}
