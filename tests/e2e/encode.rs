//! End-to-end tests of `blindlink encode`, `blindlink schema check` and `blindlink describe`.

use std::path::{Path, PathBuf};

use blindlink_encoding::format::read_clks;

use crate::support::{blindlink, data_dir};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn clks_in(path: &Path) -> blindlink_encoding::format::ClkSet {
    read_clks(std::fs::File::open(path).unwrap()).unwrap()
}

/// `blindlink encode` with the example schema and key on `input`, plus `extra` arguments.
fn encode_example(input: &str, output: &str, extra: &[&str]) -> Result<(), String> {
    let schema = repo("examples/schema.toml");
    let key = repo("examples/linkage.key");
    let mut args = vec![
        "encode",
        "--schema",
        s(&schema),
        "--secret-file",
        s(&key),
        "--input",
        input,
        "--output",
        output,
    ];
    args.extend_from_slice(extra);
    blindlink(&args)
}

const HEADER: &str = "id,surname,given_name,name_kana,date_of_birth,sex,postcode\n";
const GOOD: &str = "1,高橋,一郎,タカハシ,1985-04-03,M,100-0001\n";

/// A CSV whose line 7 (header = line 1) has an impossible date.
fn csv_with_bad_date_on_line_7(dir: &Path) -> PathBuf {
    let mut text = String::from(HEADER);
    for _ in 0..5 {
        text.push_str(GOOD);
    }
    text.push_str("7,山田,太郎,ヤマダ,1990-02-30,M,530-0001\n");
    text.push_str(GOOD);
    write_file(dir, "people.csv", text)
}

/// Writes `contents` to `dir/name` and returns the path.
fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The names of the files in `dir`, sorted: what a failed run left behind.
fn files_in(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

#[test]
fn readme_command_encodes_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clks.json");
    encode_example(s(&repo("examples/people.csv")), s(&out), &[]).unwrap();
    let clks = clks_in(&out);
    assert_eq!((clks.len(), clks.filter_bits()), (30, 1024));
    // Rows 1 and 2 are the same person written differently (髙/高, half-width kana, era date).
    assert_eq!(clks.get(0), clks.get(1));
    // Derived from personal data: readable by the owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn bad_date_on_line_7_names_line_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = csv_with_bad_date_on_line_7(dir.path());
    let out = dir.path().join("clks.json");
    let err = encode_example(s(&input), s(&out), &[]).unwrap_err();
    let expected = format!("{}:7: field 'date_of_birth': ", input.display());
    assert!(err.starts_with(&expected), "{err}");
    assert!(!out.exists());
    // No temporary file is left behind either.
    assert_eq!(files_in(dir.path()), ["people.csv"]);
}

#[test]
fn rejects_file_takes_bad_rows_and_the_rest_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let input = csv_with_bad_date_on_line_7(dir.path());
    let out = dir.path().join("clks.bin");
    let rejects = dir.path().join("rejects.csv");
    encode_example(
        s(&input),
        s(&out),
        &["--format", "bin", "--rejects", s(&rejects)],
    )
    .unwrap();
    assert_eq!(clks_in(&out).len(), 6);
    let text = std::fs::read_to_string(&rejects).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("line,field,reason,id,surname,given_name,name_kana,date_of_birth,sex,postcode")
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("7,date_of_birth,"), "{row}");
    assert!(
        row.ends_with(",7,山田,太郎,ヤマダ,1990-02-30,M,530-0001"),
        "{row}"
    );
    assert_eq!(lines.next(), None);
}

/// 10,000 rows, three batches of the encoding pipeline: rows with an impossible date on lines
/// 4,500 and 9,001 and a short row on line 9,500 (the header is line 1).
fn csv_with_bad_rows_in_later_batches(dir: &Path) -> PathBuf {
    let mut text = String::from(HEADER);
    for line in 2..=10_001 {
        text.push_str(&match line {
            4500 | 9001 => format!("{line},山田,太郎,ヤマダ,1990-02-30,M,530-0001\n"),
            9500 => format!("{line},山田\n"),
            _ => format!(
                "{line},高橋,一郎,タカハシ,1985-04-{:02},M,100-0001\n",
                line % 28 + 1
            ),
        });
    }
    write_file(dir, "many.csv", text)
}

/// Whatever the number of workers, the first bad row in file order fails the run, the rejects
/// come out in file order, and the CLKs are the same bytes in the same order.
#[test]
fn many_batches_keep_file_order_on_any_number_of_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = csv_with_bad_rows_in_later_batches(dir.path());
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.path().join(format!("clks-{threads}.bin"));
        let err = encode_example(s(&input), s(&out), &["--threads", threads]).unwrap_err();
        let expected = format!("{}:4500: field 'date_of_birth': ", input.display());
        assert!(err.starts_with(&expected), "{threads} workers: {err}");
        assert!(!out.exists());

        let rejects = dir.path().join(format!("rejects-{threads}.csv"));
        let extra = [
            "--threads",
            threads,
            "--format",
            "bin",
            "--rejects",
            s(&rejects),
        ];
        encode_example(s(&input), s(&out), &extra).unwrap();
        // Each rejected row, its fields joined by '|'.
        let rows: Vec<String> = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&rejects)
            .unwrap()
            .records()
            .map(|r| r.unwrap().iter().collect::<Vec<_>>().join("|"))
            .collect();
        let bad_date = "day 30 does not exist in february 1990, which has 28 days";
        let row = "山田|太郎|ヤマダ|1990-02-30|M|530-0001";
        assert_eq!(
            rows,
            [
                format!("4500|date_of_birth|{bad_date}|4500|{row}"),
                format!("9001|date_of_birth|{bad_date}|9001|{row}"),
                "9500||the row has 2 fields but the header has 7|9500|山田".to_owned(),
            ],
            "{threads} workers"
        );
        outputs.push(std::fs::read(&out).unwrap());
    }
    let clks = read_clks(&outputs[0][..]).unwrap();
    assert_eq!(clks.len(), 9_997);
    // Row 2 has day 3 and row 30 (line 30, day 30 % 28 + 1 = 3) too: same person, same CLK;
    // row 3 (day 4) differs. Indices count good rows only.
    assert_eq!(clks.get(0), clks.get(28));
    assert_ne!(clks.get(0), clks.get(1));
    assert!(outputs.iter().all(|o| *o == outputs[0]));
}

/// A row that is not valid UTF-8 is a bad row like any other: without `--rejects` the first
/// bad row in the file is the error (here an earlier impossible date, then the UTF-8 row
/// itself); with `--rejects` it is listed with its line and the rest is encoded.
#[test]
fn invalid_utf8_is_a_bad_row_with_its_line_not_the_end_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(HEADER).into_bytes();
    for line in 2..=9_001u32 {
        if line == 9_000 {
            text.extend_from_slice(b"9000,\xff\xfe,x,x,1985-04-03,M,\n");
        } else if line == 20 {
            text.extend_from_slice("20,山田,太郎,ヤマダ,1990-13-01,M,\n".as_bytes());
        } else {
            text.extend_from_slice(GOOD.as_bytes());
        }
    }
    let input = write_file(dir.path(), "broken.csv", &text);
    let out = dir.path().join("clks.json");
    let err = encode_example(s(&input), s(&out), &["--threads", "2"]).unwrap_err();
    let expected = format!("{}:20: field 'date_of_birth': ", input.display());
    assert!(err.starts_with(&expected), "{err}");
    assert!(!out.exists());
    assert_eq!(files_in(dir.path()), ["broken.csv"]);

    let rejects = dir.path().join("rejects.csv");
    encode_example(s(&input), s(&out), &["--rejects", s(&rejects)]).unwrap();
    assert_eq!(clks_in(&out).len(), 9_000 - 2);
    let rows: Vec<String> = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&rejects)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().take(4).collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(
        rows,
        [
            "20|date_of_birth|month 13 is not in 1..=12|20",
            "9000|surname|the value is not valid UTF-8|9000",
        ]
    );

    // Alone, the UTF-8 row is the error, with its line and column.
    let only = write_file(
        dir.path(),
        "utf8.csv",
        [
            HEADER.as_bytes(),
            GOOD.as_bytes(),
            b"2,\xff,x,x,1985-04-03,M,\n",
        ]
        .concat(),
    );
    let err = encode_example(s(&only), s(&out), &[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}:3: field 'surname': the value is not valid UTF-8",
            only.display()
        )
    );
}

/// A run killed before it could clean up leaves `.blindlink-<pid>-*.partial` files: the next
/// run into that directory removes those of processes that are gone, and never a live one.
#[test]
fn partial_files_of_a_killed_run_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    // A process id above Linux's largest (2^22): no such process is running.
    let stale = write_file(dir.path(), ".blindlink-4194305-AbCdEf.partial", b"half");
    // A running process's (a child that sleeps), and a locked one: both are live.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let running = write_file(
        dir.path(),
        &format!(".blindlink-{}-XyZ123.partial", child.id()),
        b"live",
    );
    let locked = write_file(dir.path(), ".blindlink-4194306-LoCkEd.partial", b"live");
    let held = std::fs::File::open(&locked).unwrap();
    held.try_lock().unwrap();
    let out = dir.path().join("clks.json");
    encode_example(s(&repo("examples/people.csv")), s(&out), &[]).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!stale.exists());
    assert!(running.exists() && locked.exists());
    assert_eq!(clks_in(&out).len(), 30);
    drop(held);
}

/// `encode` stopped by SIGINT or SIGTERM removes its unfinished output and exits 130 / 143.
/// The test runs itself again as the child (with `BLINDLINK_E2E_SIGNAL_CHILD` set), whose
/// input is a FIFO the parent keeps open, so the child is mid-run when the signal comes.
#[cfg(unix)]
#[test]
fn sigint_and_sigterm_remove_the_partial_output() {
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(dir) = std::env::var_os("BLINDLINK_E2E_SIGNAL_CHILD") {
        let dir = PathBuf::from(dir);
        let _ = encode_example(s(&dir.join("in.csv")), s(&dir.join("clks.json")), &[]);
        return;
    }
    for (signal, status) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in.csv");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "encode::sigint_and_sigterm_remove_the_partial_output",
                "--exact",
                "--test-threads=1",
            ])
            .env("BLINDLINK_E2E_SIGNAL_CHILD", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Opening blocks until the child opens the FIFO to read; the header and one row go
        // through, then the child waits for more.
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        use std::io::Write as _;
        writer.write_all(HEADER.as_bytes()).unwrap();
        writer.write_all(GOOD.as_bytes()).unwrap();
        writer.flush().unwrap();
        let partials = || {
            files_in(dir.path())
                .into_iter()
                .filter(|n| n.to_string_lossy().ends_with(".partial"))
                .count()
        };
        let started = std::time::Instant::now();
        while partials() == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The handler is installed before the output is created.
        let killed = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = child.wait().unwrap();
        drop(writer);
        assert_eq!(
            (exit.code(), exit.signal()),
            (Some(status), None),
            "SIG{signal}"
        );
        assert_eq!(files_in(dir.path()), ["in.csv"], "SIG{signal}");
    }
}

/// Key files shorter than 16 bytes are refused.
#[test]
fn short_secret_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_file(dir.path(), "weak.key", b"k");
    let out = dir.path().join("clks.json");
    let err = blindlink(&[
        "encode",
        "--schema",
        s(&repo("examples/schema.toml")),
        "--secret-file",
        s(&key),
        "--input",
        s(&repo("examples/people.csv")),
        "--output",
        s(&out),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "key file {} holds 1 bytes; a linkage key needs at least 16 (make one with \
             `blindlink keygen`, or set BLINDLINK_ALLOW_WEAK_KEY=1 to use a weak key for tests)",
            key.display()
        )
    );
    assert!(!out.exists());
}

#[test]
fn line_numbers_count_physical_lines_of_quoted_fields() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("multi.csv");
    let text = format!(
        "{HEADER}1,\"高橋\n(旧姓 田中)\",一郎,タカハシ,1985-04-03,M,\n2,山田,太郎,ヤマダ,13/13/2000,M,\n"
    );
    std::fs::write(&input, text).unwrap();
    let err = encode_example(s(&input), s(&dir.path().join("o.json")), &[]).unwrap_err();
    assert!(
        err.starts_with(&format!("{}:4: field 'date_of_birth': ", input.display())),
        "{err}"
    );
}

#[test]
fn header_without_a_schema_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("h.csv");
    std::fs::write(&input, "id,surname\n1,x\n").unwrap();
    let err = encode_example(s(&input), s(&dir.path().join("o.json")), &[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}:1: header: no column 'given_name' (the schema needs it)",
            input.display()
        )
    );
}

#[test]
fn clkhash_schema_through_the_cli_matches_clkhash_on_febrl4() {
    let dir = tempfile::tempdir().unwrap();
    // The reference CLKs were made from secret.txt stripped of surrounding whitespace.
    let key = dir.path().join("febrl.key");
    let secret = std::fs::read_to_string(data_dir().join("febrl4/secret.txt")).unwrap();
    std::fs::write(&key, secret.trim()).unwrap();
    let single = dir.path().join("one.json");
    let parallel = dir.path().join("two.json");
    for (out, threads) in [(&single, "1"), (&parallel, "2")] {
        blindlink(&[
            "encode",
            "--schema",
            s(&data_dir().join("febrl4/schema-5field.json")),
            "--secret-file",
            s(&key),
            "--input",
            s(&data_dir().join("febrl4/a.csv")),
            "--output",
            s(out),
            "--threads",
            threads,
        ])
        .unwrap();
    }
    let expected = clks_in(&data_dir().join("febrl4/clkhash-a.json"));
    assert_eq!(clks_in(&single).as_bytes(), expected.as_bytes());
    assert_eq!(clks_in(&parallel).as_bytes(), expected.as_bytes());
}

#[test]
fn binary_output_carries_the_schema_digest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.bin");
    blindlink(&[
        "encode",
        "--schema",
        s(&repo("examples/clkhash-schema.json")),
        "--secret-file",
        s(&repo("examples/linkage.key")),
        "--input",
        s(&repo("examples/people.csv")),
        "--output",
        s(&out),
        "--format",
        "bin",
    ])
    .unwrap();
    let clks = clks_in(&out);
    assert_eq!(clks.len(), 30);
    let text = std::fs::read_to_string(repo("examples/clkhash-schema.json")).unwrap();
    let doc = blindlink_encoding::SchemaDocument::parse(&text).unwrap();
    assert_eq!(clks.schema_digest(), Some(doc.digest));
}

#[test]
fn schema_check_explains_errors_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version": 3, "clkConfig": {"l": 1024, "kdf": {"type": "HKDF"}},
            "features": [{"identifier": "a", "format": {"type": "string"},
                          "hashing": {"comparison": {"type": "ngram", "n": 2}, "strategy": {"k": 3}}}]}"#,
    )
    .unwrap();
    let err = blindlink(&["schema", "check", s(&bad)]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "invalid schema {}: features[0].hashing.strategy: expected exactly one of 'bitsPerToken' or 'bitsPerFeature'",
            bad.display()
        )
    );
    let many = dir.path().join("many.toml");
    std::fs::write(
        &many,
        "version = 1\n[filter]\nbits = 64\n\
         [[field]]\ncolumn = \"a\"\ntokens = { kind = \"exact\" }\n\
         [[field]]\ncolumn = \"b\"\nnormalise = [\"nope\"]\ntokens = { kind = \"exact\" }\nbits_per_token = 5\n",
    )
    .unwrap();
    let err = blindlink(&["schema", "check", s(&many)]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "invalid schema {}: 2 problems:\n  field[0] 'a': give exactly one of bits_per_token or \
             bits_per_field\n  field[1] 'b'.normalise: unknown normalisation step 'nope'",
            many.display()
        )
    );
    blindlink(&["schema", "check", s(&repo("examples/schema.toml"))]).unwrap();
    blindlink(&["schema", "check", s(&repo("examples/clkhash-schema.json"))]).unwrap();
}

#[test]
fn describe_reads_both_formats_and_reports_per_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.json");
    let args = |out: &Path| {
        vec![
            "encode".to_owned(),
            "--schema".into(),
            repo("examples/schema.toml").display().to_string(),
            "--secret-file".into(),
            repo("examples/linkage.key").display().to_string(),
            "--input".into(),
            repo("examples/people.csv").display().to_string(),
            "--output".into(),
            out.display().to_string(),
        ]
    };
    let a = args(&out);
    blindlink(&a.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    blindlink(&[
        "describe",
        s(&out),
        "--schema",
        s(&repo("examples/schema.toml")),
        "--secret-file",
        s(&repo("examples/linkage.key")),
        "--input",
        s(&repo("examples/people.csv")),
    ])
    .unwrap();
    let garbage = dir.path().join("g.json");
    std::fs::write(&garbage, r#"{"clks": ["AA==", "AAA="]}"#).unwrap();
    let err = blindlink(&["describe", s(&garbage)]).unwrap_err();
    assert!(
        err.contains("record 1: clk has 2 bytes when record 0 has 1 (mixed lengths)"),
        "{err}"
    );
}

/// `--era-dates lenient` reads `平成32年1月1日` as 2020-01-01 (the same CLK as the row written
/// in the Gregorian calendar) and counts it; the default still rejects it.
#[test]
fn era_dates_outside_their_era_are_read_under_lenient_and_counted() {
    use blindlink_cli::commands::encode::{CsvEncoding, Progress};
    use blindlink_encoding::format::{ClkFormat, ClkWriter};
    use blindlink_encoding::{ClkEncoder, LinkageSecret, SchemaDocument};

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEADER}1,高橋,一郎,タカハシ,2020-01-01,M,100-0001\n\
         2,高橋,一郎,タカハシ,平成32年1月1日,M,100-0001\n\
         3,高橋,一郎,タカハシ,令和元年4月1日,M,100-0001\n\
         4,高橋,一郎,タカハシ,2019-04-01,M,100-0001\n"
    );
    let input = write_file(dir.path(), "eras.csv", &text);
    let out = dir.path().join("clks.json");
    let err = encode_example(s(&input), s(&out), &[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}:3: field 'date_of_birth': 平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30",
            input.display()
        )
    );
    encode_example(s(&input), s(&out), &["--era-dates", "lenient"]).unwrap();
    let clks = clks_in(&out);
    assert_eq!(clks.len(), 4);
    assert_eq!(clks.get(0), clks.get(1));
    assert_eq!(clks.get(2), clks.get(3));
    assert_ne!(clks.get(0), clks.get(3));

    // The count the summary line reports.
    let schema = std::fs::read_to_string(repo("examples/schema.toml")).unwrap();
    let document = SchemaDocument::parse(&schema).unwrap();
    let secret = std::fs::read(repo("examples/linkage.key")).unwrap();
    let encoder = ClkEncoder::new(&document, &LinkageSecret::from_bytes(secret).unwrap()).unwrap();
    let columns = document.schema.columns();
    let dob = columns.iter().position(|c| *c == "date_of_birth").unwrap();
    let job = CsvEncoding {
        encoder: &encoder,
        schema: &document.schema,
        input_name: "eras.csv",
        output_name: "memory",
        threads: 2,
    };
    let writer = ClkWriter::new(
        std::io::Cursor::new(Vec::new()),
        ClkFormat::Json,
        encoder.filter_bits(),
        None,
    )
    .unwrap();
    let progress = Progress::new(0, true);
    let (_, summary) = job
        .run_reading_era_dates(text.as_bytes(), writer, None, &progress, &[dob])
        .unwrap();
    assert_eq!((summary.encoded, summary.era_dates_read_leniently), (4, 2));
}
