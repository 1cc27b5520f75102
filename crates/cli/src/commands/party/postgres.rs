//! `[input] postgres`: a party's records read from a PostgreSQL query instead of a CSV file.
//!
//! The rows are streamed with `COPY (query) TO STDOUT WITH (FORMAT csv, HEADER true)` into the
//! same CSV loop and [`RecordsBuilder`](blindlink_party::RecordsBuilder) as a file, so the
//! column binding, normalisation, `invalid_rows` policy and messages are the same, rows being
//! named by the query, their number and their record id instead of a line. Memory does not
//! grow with the table: the server sends the rows as they are produced and the builder keeps
//! only ids, keys and encodings.
//!
//! The driver is the synchronous `postgres` crate (it runs its own small runtime; records
//! are read before the CLI's runtime starts). TLS, when the URL says `sslmode=require`, is
//! rustls with the `ring` provider — the stack the gRPC transport already uses — verifying
//! the server against the config's `ca` file. The password comes from an environment variable
//! or a file, never from the config (see [`blindlink_party::source`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use blindlink_party::{PasswordSource, PostgresInput, RecordSource, RecordsSpec};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use super::input::{PartyRecords, error_chain, read_csv_records};

/// How long connecting may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads `input`'s rows into records as `spec` says; `config` is the config file as shown.
///
/// # Errors
/// A URL the driver refuses, a password variable or file that is missing, a CA file that
/// does not parse, a connection or authentication failure, a query the server rejects, a
/// connection lost mid-stream, and every error of a CSV input (bad rows under `abort`, no
/// rows, missing columns) with the query and the row instead of a file and line.
pub fn read_postgres_records(
    input: &PostgresInput,
    config: &str,
    spec: RecordsSpec<'_>,
) -> anyhow::Result<PartyRecords> {
    let reader = copy_reader(input, config)?;
    read_csv_records(reader, RecordSource::Query(input.shown()), spec)
}

/// `input`'s rows as a CSV stream with a header row (`COPY (query) TO STDOUT WITH (FORMAT
/// csv, HEADER true)`), the connection owned by the reader.
///
/// # Errors
/// As [`read_postgres_records`], before the first row: the connection, the password, the
/// query.
pub fn copy_reader(
    input: &PostgresInput,
    config: &str,
) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
    let shown = input.shown();
    let copy = format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)",
        input.query
    );
    // The driver runs its own runtime, and its reader borrows the client: a thread of its own
    // connects and reads (so a caller inside an async runtime can use this too), and hands
    // the bytes over a bounded channel (at most CHUNKS_IN_FLIGHT chunks wait), which also
    // overlaps the network with the parsing and encoding.
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel::<anyhow::Result<()>>(1);
    let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let input = input.clone();
    let config = config.to_owned();
    std::thread::Builder::new()
        .name("postgres-copy".into())
        .spawn(move || {
            let mut client = match connect(&input, &config) {
                Ok(client) => client,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let mut reader = match client.copy_out(copy.as_str()) {
                Ok(reader) => {
                    let _ = started_tx.send(Ok(()));
                    reader
                }
                Err(e) => {
                    let shown = input.shown();
                    let _ = started_tx.send(Err(anyhow::anyhow!(
                        "{shown}: the query failed: {}",
                        describe(&e)
                    )));
                    return;
                }
            };
            loop {
                let mut chunk = vec![0; CHUNK_BYTES];
                match std::io::Read::read(&mut reader, &mut chunk) {
                    Ok(0) => {
                        // The end, said explicitly: a thread that dies says nothing.
                        let _ = chunks_tx.send(Ok(Vec::new()));
                        return;
                    }
                    Ok(n) => {
                        chunk.truncate(n);
                        if chunks_tx.send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The server's words (`ERROR: division by zero`), not the driver's
                        // `db error`.
                        let text = match e.get_ref().and_then(|i| i.downcast_ref()) {
                            Some(pg) => describe(pg),
                            None => error_chain(&e),
                        };
                        let _ = chunks_tx.send(Err(std::io::Error::other(text)));
                        return;
                    }
                }
            }
        })
        .context("cannot start the postgres reader thread")?;
    match started_rx.recv() {
        Ok(result) => result?,
        Err(_) => bail!("{shown}: the postgres reader thread stopped before the query ran"),
    }
    Ok(Box::new(ChannelReader {
        chunks: chunks_rx,
        chunk: Vec::new(),
        at: 0,
        ended: false,
    }))
}

/// Bytes per chunk handed from the COPY thread to the CSV reader.
const CHUNK_BYTES: usize = 1 << 16;
/// Chunks that may wait between them (so at most 1 MiB of rows is buffered).
const CHUNKS_IN_FLIGHT: usize = 16;

/// The reading end of the COPY thread's channel: chunks of the stream, an empty one at its
/// end, or the error that stopped it.
struct ChannelReader {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                    self.ended = self.chunk.is_empty();
                }
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the postgres reader thread stopped before the last row",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Connects as `input` says, with the password from its source.
///
/// # Security
/// The password is read into zeroizing memory, but the driver's `Config::password` keeps its
/// own copy (a plain `Vec<u8>`, as does its SCRAM exchange) that is freed without being
/// overwritten; the driver offers no way to clear it, so the copy lives only as long as this
/// function (the `Config` is dropped here, and the returned client holds no password). Never in
/// a message: errors name `host:port/database` only.
fn connect(input: &PostgresInput, config: &str) -> anyhow::Result<postgres::Client> {
    let mut pg = postgres::Config::from_str(&input.url)
        .map_err(|e| anyhow::anyhow!("{config}: input.postgres.url: {}", describe(&e)))?;
    pg.connect_timeout(CONNECT_TIMEOUT);
    pg.application_name("blindlink");
    let password: Option<Zeroizing<String>> = match &input.password {
        PasswordSource::None => None,
        PasswordSource::Env(name) => Some(Zeroizing::new(std::env::var(name).map_err(|_| {
            anyhow::anyhow!(
                "{config}: input.postgres.password_env: the environment variable {name} is not set"
            )
        })?)),
        PasswordSource::File(path) => {
            let text = Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                format!(
                    "{config}: input.postgres.password_file: cannot read {}",
                    path.display()
                )
            })?);
            Some(Zeroizing::new(text.lines().next().unwrap_or("").to_owned()))
        }
    };
    if let Some(password) = &password {
        pg.password(password.as_bytes());
    }
    let target = target(&pg);
    let connected = if input.requires_tls() {
        let tls = rustls_connector(input, config)?;
        pg.connect(tls)
    } else {
        pg.connect(postgres::NoTls)
    };
    connected
        .map_err(|e| anyhow::anyhow!("cannot connect to postgres at {target}: {}", describe(&e)))
}

/// `host:port/database` of `pg`, for messages (never the password).
fn target(pg: &postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", pg.get_dbname().unwrap_or(""))
}

/// A rustls connector trusting only the certificates of `input.ca`.
fn rustls_connector(
    input: &PostgresInput,
    config: &str,
) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let Some(ca) = &input.ca else {
        bail!("{config}: input.postgres.ca: is needed when the url asks for TLS");
    };
    let shown = || format!("{config}: input.postgres.ca: {}", ca.display());
    let pem = std::fs::read(ca).with_context(|| format!("{}: cannot read it", shown()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| anyhow::anyhow!("{}: the pem does not parse", shown()))?;
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("{}: {e}", shown()))?;
    }
    if roots.is_empty() {
        bail!("{}: holds no certificate", shown());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the rustls provider supports no protocol version")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}

/// A driver error with its cause: the server's own message where there is one
/// (`ERROR: relation "x" does not exist`), else the driver's words and their sources.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => error_chain(e),
    }
}
