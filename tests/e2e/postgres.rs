//! `[input] postgres` against a real PostgreSQL server (issue 15): the one `.ci/postgres.sh
//! start` runs, found through `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE`.
//! Without them a test says so and passes, unless `CI` is set: then it fails.
//!
//! A registry read from a table links with the insurer's CSV exactly as the two CSVs do; a
//! bad row (abort and reject), a wrong password, an unknown table, a query that fails
//! mid-stream and a connection terminated mid-stream each stop the party with a clear error before anything is written; with
//! `sslmode=require` the server is verified against the configured CA. `blindlink encode` reads
//! a table or a query as it reads the CSV.

use std::process::Command;

use blindlink_cli::commands::party::{PartyCommand, PartyConfig, load_party};

use crate::support::{PeerDir, blindlink, link_to, serve_while};

/// The server's connection settings, from the environment.
struct Server {
    host: String,
    port: String,
    user: String,
    database: String,
}

/// The server, or `None` (said on stderr) when the environment names none and `CI` is unset.
fn server(test: &str) -> Option<Server> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let names = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"];
    let missing: Vec<&str> = names.into_iter().filter(|n| var(n).is_none()).collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {} are not: .ci/run must start the server (.ci/postgres.sh start)",
            missing.join(", ")
        );
        eprintln!(
            "{test}: skipped: no PostgreSQL server ({} unset; eval \"$(.ci/postgres.sh start)\" \
             starts one)",
            missing.join(", ")
        );
        return None;
    }
    Some(Server {
        host: var("PGHOST")?,
        port: var("PGPORT")?,
        user: var("PGUSER")?,
        database: var("PGDATABASE")?,
    })
}

impl Server {
    /// The URL a config names (no password: `password_env = "PGPASSWORD"`).
    fn url(&self) -> String {
        format!(
            "postgresql://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// Runs `sql` with psql (which reads the PG* variables), failing the test on an error.
    fn psql(&self, sql: &str) {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs (Debian's postgresql-client)");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fresh table `name` holding `csv` (every column text), as a registry would keep it.
    fn load_table(&self, name: &str, csv: &std::path::Path) {
        let header = csv::Reader::from_path(csv)
            .unwrap()
            .headers()
            .unwrap()
            .clone();
        let columns: Vec<String> = header.iter().map(|h| format!("\"{h}\" text")).collect();
        self.psql(&format!("DROP TABLE IF EXISTS {name}"));
        self.psql(&format!("CREATE TABLE {name} ({})", columns.join(", ")));
        self.psql(&format!(
            "\\copy {name} FROM '{}' WITH (FORMAT csv, HEADER true)",
            csv.display()
        ));
    }
}

/// A table name of its own for each test run (tests run in parallel, runs may overlap).
fn table(test: &str) -> String {
    format!("{test}_{}", std::process::id())
}

/// The registry's `[input] csv` replaced by `postgres = { url, <what> }` (`what`: `table =
/// ...` or `query = ...`, and a password source).
fn registry_from_postgres(setup: &PeerDir, server: &Server, what: &str) {
    setup.replace(
        "registry",
        "csv = \"data/registry.csv\"",
        &format!("postgres = {{ url = \"{}\", {what} }}", server.url()),
    );
}

/// `blindlink serve` for the registry, in-process: the error text, and the files written.
fn serve_error(setup: &PeerDir) -> (String, Vec<String>) {
    let config = setup.config("registry");
    let error = blindlink(&["serve", "--quiet", "--config", config.to_str().unwrap()])
        .expect_err("serve must fail");
    (error, setup.outputs("registry"))
}

/// Both parties' `links.csv` after one session (in-process, loopback mTLS).
async fn session_links(setup: &PeerDir) -> (String, String) {
    let server = setup.load("registry", PartyCommand::Serve);
    let client = setup.load("insurer", PartyCommand::Link);
    let (served, linked) = serve_while(&server, |address| link_to(&client, address)).await;
    served.unwrap();
    linked.unwrap();
    let read = |party: &str| std::fs::read_to_string(setup.path(&format!("out/{party}/links.csv")));
    let links = (read("registry").unwrap(), read("insurer").unwrap());
    std::fs::remove_dir_all(setup.path("out")).unwrap();
    links
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_in_a_table_links_as_its_csv_does() {
    let Some(server) = server("a_registry_in_a_table_links_as_its_csv_does") else {
        return;
    };
    let setup = PeerDir::registry_insurer(150);
    let from_csv = session_links(&setup).await;
    assert!(from_csv.1.lines().count() > 20, "{}", from_csv.1);

    let name = table("registry_links");
    server.load_table(&name, &setup.path("data/registry.csv"));
    registry_from_postgres(
        &setup,
        &server,
        &format!("table = \"{name}\", password_env = \"PGPASSWORD\""),
    );
    let config = PartyConfig::load(&setup.config("registry"), PartyCommand::Serve).unwrap();
    assert_eq!(
        config.input.to_string(),
        format!("postgres table \"{name}\"")
    );
    let from_table = session_links(&setup).await;
    assert_eq!(from_table, from_csv, "links.csv of (registry, insurer)");
    server.psql(&format!("DROP TABLE {name}"));
}

#[test]
fn a_bad_row_names_the_query_and_the_row_key() {
    let Some(server) = server("a_bad_row_names_the_query_and_the_row_key") else {
        return;
    };
    let setup = PeerDir::registry_insurer(40);
    let name = table("registry_bad_row");
    server.load_table(&name, &setup.path("data/registry.csv"));
    // A copy of the first row under an id that sorts last, its date of birth after 平成 ended.
    server.psql(&format!(
        "INSERT INTO {name} SELECT * FROM {name} ORDER BY record_id LIMIT 1; \
         UPDATE {name} SET record_id = 'zz-bad', date_of_birth = '平成32年1月1日' \
         WHERE ctid = (SELECT max(ctid) FROM {name})"
    ));
    let query = format!("SELECT * FROM {name} ORDER BY record_id");
    registry_from_postgres(
        &setup,
        &server,
        &format!("query = \"{query}\", password_env = \"PGPASSWORD\""),
    );
    let rows = csv::Reader::from_path(setup.path("data/registry.csv"))
        .unwrap()
        .records()
        .count()
        + 1;
    let reason =
        "field 'date_of_birth': 平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30";
    let (error, written) = serve_error(&setup);
    assert_eq!(
        error,
        format!("postgres query \"{query}\" row {rows} (record_id 'zz-bad'): {reason}")
    );
    assert_eq!(written, Vec::<String>::new(), "nothing written");

    setup.replace(
        "registry",
        "id_column = \"record_id\"",
        "id_column = \"record_id\"\ninvalid_rows = \"reject\"",
    );
    let party =
        load_party(PartyConfig::load(&setup.config("registry"), PartyCommand::Serve).unwrap())
            .unwrap();
    let rejects = party.records.rejects.as_ref().unwrap();
    assert_eq!(rejects.file, format!("postgres query \"{query}\""));
    let listed: Vec<(u64, &str, &str, &str)> = rejects
        .rows
        .iter()
        .map(|r| {
            (
                r.line,
                r.field.as_str(),
                r.reason.as_str(),
                r.values[0].as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(
            rows as u64,
            "date_of_birth",
            "平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30",
            "zz-bad"
        )]
    );
    assert_eq!(party.records.ids.len(), rows - 1);
    server.psql(&format!("DROP TABLE {name}"));
}

#[test]
fn a_wrong_password_an_unknown_table_and_a_failing_query_write_nothing() {
    let Some(server) =
        server("a_wrong_password_an_unknown_table_and_a_failing_query_write_nothing")
    else {
        return;
    };
    let setup = PeerDir::registry_insurer(400);
    let name = table("registry_errors");
    server.load_table(&name, &setup.path("data/registry.csv"));
    let original = std::fs::read_to_string(setup.config("registry")).unwrap();
    let target = format!("{}:{}/{}", server.host, server.port, server.database);
    let last_id = csv::Reader::from_path(setup.path("data/registry.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap()[0].to_owned())
        .last()
        .unwrap();
    std::fs::write(setup.path("wrong.password"), "not-the-password\n").unwrap();
    let cases = [
        (
            format!("table = \"{name}\", password_file = \"wrong.password\""),
            format!(
                "cannot connect to postgres at {target}: FATAL: password authentication failed \
                 for user \"{}\"",
                server.user
            ),
        ),
        (
            "table = \"no_such_table\", password_env = \"PGPASSWORD\"".to_owned(),
            "postgres table \"no_such_table\": the query failed: ERROR: relation \
             \"no_such_table\" does not exist"
                .to_owned(),
        ),
        (
            "table = \"t\", password_env = \"BLINDLINK_NO_SUCH_VARIABLE\"".to_owned(),
            format!(
                "{}: input.postgres.password_env: the environment variable \
                 BLINDLINK_NO_SUCH_VARIABLE is not set",
                setup.config("registry").display()
            ),
        ),
    ];
    for (what, expected) in cases {
        std::fs::write(setup.config("registry"), &original).unwrap();
        registry_from_postgres(&setup, &server, &what);
        let (error, written) = serve_error(&setup);
        assert_eq!(error, expected, "{what}");
        assert_eq!(written, Vec::<String>::new(), "{what}: nothing written");
    }

    // The server raises after sending rows: the connection's end mid-stream is an error
    // naming the row it stopped at, never a shorter set of records.
    std::fs::write(setup.config("registry"), &original).unwrap();
    // A sequential scan in insertion order: the rows before the last one are sent first.
    let query = format!(
        "SELECT * FROM {name} WHERE 1 / (CASE WHEN record_id = '{last_id}' THEN 0 ELSE 1 END) = 1"
    );
    registry_from_postgres(
        &setup,
        &server,
        &format!("query = \"{query}\", password_env = \"PGPASSWORD\""),
    );
    let (error, written) = serve_error(&setup);
    let shown = format!("postgres query \"{query}\" row ");
    assert!(error.starts_with(&shown), "{error}");
    assert!(
        error.ends_with(": cannot read the row: ERROR: division by zero"),
        "{error}"
    );
    assert_eq!(written, Vec::<String>::new(), "nothing written");
    server.psql(&format!("DROP TABLE {name}"));
}

#[test]
fn a_connection_dropped_mid_stream_is_an_error_and_writes_nothing() {
    let Some(server) = server("a_connection_dropped_mid_stream_is_an_error_and_writes_nothing")
    else {
        return;
    };
    let setup = PeerDir::registry_insurer(400);
    let name = table("registry_dropped");
    server.load_table(&name, &setup.path("data/registry.csv"));
    let last_id = csv::Reader::from_path(setup.path("data/registry.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap()[0].to_owned())
        .last()
        .unwrap();
    // The rows before the last are sent, then the query waits on the last one until the
    // backend serving it is terminated from a second connection (an administrator, a
    // failover, a network cut: the party sees the connection end mid-stream).
    let marker = format!("blindlink_dropped_{}", std::process::id());
    let query = format!(
        "SELECT /* {marker} */ * FROM {name} WHERE record_id <> '{last_id}' OR \
         (SELECT true FROM pg_sleep(60))"
    );
    registry_from_postgres(
        &setup,
        &server,
        &format!("query = \"{query}\", password_env = \"PGPASSWORD\""),
    );
    let killer = {
        let marker = marker.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let out = Command::new("psql")
                    .args(["-X", "-q", "-t", "-A", "-c"])
                    .arg(format!(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
                    ))
                    .output()
                    .expect("psql runs");
                if String::from_utf8_lossy(&out.stdout).trim() == "1" {
                    return true;
                }
            }
            false
        })
    };
    let (error, written) = serve_error(&setup);
    assert!(killer.join().unwrap(), "the query's backend was terminated");
    let shown = format!("postgres query \"{query}\"");
    assert!(error.starts_with(&shown), "{error}");
    // What the driver sees depends on timing: the server's goodbye, or the socket's end.
    let ends = [
        "terminating connection due to administrator command",
        "connection closed",
        "Connection reset by peer",
    ];
    assert!(error.contains(": cannot read the row: "), "{error}");
    assert!(ends.iter().any(|end| error.contains(end)), "{error}");
    assert_eq!(written, Vec::<String>::new(), "nothing written");
    server.psql(&format!("DROP TABLE {name}"));
}

/// The CLKs of an anonlink JSON file, in file order.
fn clks(path: &std::path::Path) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["clks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// `blindlink encode --input postgresql://...` (issue 15: "for serve, link and encode"): a
/// table gives the CSV's CLKs, a query with `ORDER BY` the CSV's bytes, and a wrong password
/// an error naming the server and no output file.
#[test]
fn encode_reads_a_table_or_a_query_as_it_reads_the_csv() {
    let Some(server) = server("encode_reads_a_table_or_a_query_as_it_reads_the_csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let people = repo.join("examples/people.csv");
    let schema = repo.join("examples/schema.toml");
    blindlink(&["keygen", "--out", &path("linkage.key")]).unwrap();
    let name = table("people_encode");
    server.load_table(&name, &people);
    let key = path("linkage.key");
    let encode = |input: &[&str], output: &str| {
        let mut args = vec![
            "encode",
            "--schema",
            schema.to_str().unwrap(),
            "--secret-file",
            &key,
            "--no-progress",
        ];
        args.extend_from_slice(input);
        let output = path(output);
        args.extend_from_slice(&["--output", &output]);
        blindlink(&args)
    };
    encode(&["--input", people.to_str().unwrap()], "csv.json").unwrap();
    let url = server.url();
    let from_db = ["--input", url.as_str(), "--password-env", "PGPASSWORD"];
    encode(&[&from_db[..], &["--table", &name]].concat(), "table.json").unwrap();
    let query = format!("SELECT * FROM {name} ORDER BY id::int");
    encode(&[&from_db[..], &["--query", &query]].concat(), "query.json").unwrap();

    let from_csv = clks(dir.path().join("csv.json").as_path());
    assert_eq!(from_csv.len(), 30);
    let mut from_table = clks(dir.path().join("table.json").as_path());
    from_table.sort();
    let mut sorted = from_csv.clone();
    sorted.sort();
    assert_eq!(from_table, sorted, "a table gives the CSV's CLKs");
    assert_eq!(
        std::fs::read(path("query.json")).unwrap(),
        std::fs::read(path("csv.json")).unwrap(),
        "a query in the CSV's order gives its bytes"
    );

    std::fs::write(path("wrong.password"), "not-the-password\n").unwrap();
    let error = encode(
        &[
            "--input",
            url.as_str(),
            "--password-file",
            &path("wrong.password"),
            "--table",
            &name,
        ],
        "wrong.json",
    )
    .unwrap_err();
    assert_eq!(
        error,
        format!(
            "cannot connect to postgres at {}:{}/{}: FATAL: password authentication failed for \
             user \"{}\"",
            server.host, server.port, server.database, server.user
        )
    );
    assert!(!dir.path().join("wrong.json").exists(), "nothing written");
    server.psql(&format!("DROP TABLE {name}"));
}

#[test]
fn the_example_config_reads_a_table_and_a_password_in_its_url_is_refused() {
    let path = crate::support::examples().join("registry-postgres.toml");
    let config = PartyConfig::load(&path, PartyCommand::Serve).unwrap();
    assert_eq!(config.input.to_string(), "postgres table \"residents\"");
    // Everything but [input] is registry.toml's, so it links with insurer.toml (the handshake
    // commits to the thresholds and the schema).
    let mut csv = PartyConfig::load(
        &crate::support::examples().join("registry.toml"),
        PartyCommand::Serve,
    )
    .unwrap();
    (csv.input, csv.source) = (config.input.clone(), config.source.clone());
    assert_eq!(config, csv);
    let text = std::fs::read_to_string(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("registry-postgres.toml");
    std::fs::write(
        &copy,
        text.replace("blindlink@127.0.0.1", "blindlink:hunter2@127.0.0.1"),
    )
    .unwrap();
    let error = PartyConfig::load(&copy, PartyCommand::Serve).unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        format!(
            "{}: input.postgres.url: contains a password; a config must not hold one: give the \
             password with input.postgres.password_env or password_file",
            copy.display()
        )
    );
}

#[test]
fn tls_to_the_database_is_verified_against_the_configured_ca() {
    let Some(server) = server("tls_to_the_database_is_verified_against_the_configured_ca") else {
        return;
    };
    let Some(ca) = std::env::var_os("BLINDLINK_PG_CA") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but BLINDLINK_PG_CA is not: .ci/postgres.sh start exports it"
        );
        eprintln!("tls test skipped: the server has no TLS (BLINDLINK_PG_CA unset)");
        return;
    };
    let setup = PeerDir::registry_insurer(40);
    let name = table("registry_tls");
    server.load_table(&name, &setup.path("data/registry.csv"));
    // A CA that did not sign the server's certificate.
    let other = setup.path("other-ca");
    blindlink(&[
        "certs",
        "--out",
        other.to_str().unwrap(),
        "--names",
        "localhost",
    ])
    .unwrap();
    let original = std::fs::read_to_string(setup.config("registry")).unwrap();
    let url = format!(
        "postgresql://{}@localhost:{}/{}?sslmode=require",
        server.user, server.port, server.database
    );
    let with_ca = |ca: &std::path::Path| {
        std::fs::write(setup.config("registry"), &original).unwrap();
        setup.replace(
            "registry",
            "csv = \"data/registry.csv\"",
            &format!(
                "postgres = {{ url = \"{url}\", table = \"{name}\", password_env = \"PGPASSWORD\", \
                 ca = \"{}\" }}",
                ca.display()
            ),
        );
    };

    with_ca(std::path::Path::new(&ca));
    let party =
        load_party(PartyConfig::load(&setup.config("registry"), PartyCommand::Serve).unwrap())
            .unwrap();
    let rows = csv::Reader::from_path(setup.path("data/registry.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(party.records.ids.len(), rows);

    with_ca(&other.join("ca.pem"));
    let (error, written) = serve_error(&setup);
    assert_eq!(
        error,
        format!(
            "cannot connect to postgres at localhost:{}/{}: error performing TLS handshake: \
             invalid peer certificate: UnknownIssuer",
            server.port, server.database
        )
    );
    assert_eq!(written, Vec::<String>::new(), "nothing written");
    server.psql(&format!("DROP TABLE {name}"));
}
