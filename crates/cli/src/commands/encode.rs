//! `blindlink encode`: CSV records → CLKs, streamed through a reader, encoding workers and an
//! in-order writer (see [`CsvEncoding`]).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindlink_encoding::format::{ClkFormat, ClkWriter};
use blindlink_encoding::normalise::date::{EraReading, NumericOrder, normalise_date_with};
use blindlink_encoding::{
    ClkEncoder, EncoderScratch, EncodingError, LinkageSecret, Schema, SchemaDocument,
};

use crate::output::AtomicFile;

/// Output format of `blindlink encode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// anonlink JSON: {"clks": ["base64", ...]}, readable by anonlink and clkhash tools.
    Json,
    /// blindlink's compact binary format: a header (magic, version, filter length, count,
    /// schema digest) followed by the raw CLKs.
    Bin,
}

/// Arguments of `blindlink encode`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  blindlink encode --schema examples/schema.toml --secret-file examples/linkage.key \\\n    --input examples/people.csv --output clks.json"
)]
pub struct EncodeArgs {
    /// Linkage schema: blindlink's native TOML or a clkhash v3 JSON schema (detected from the
    /// content). `blindlink schema check FILE` explains what is wrong with one.
    #[arg(long, value_name = "SCHEMA")]
    pub schema: PathBuf,
    /// File holding the shared linkage secret. Its bytes are used exactly as they are (no
    /// trimming of a trailing newline), as clkhash does with its secret.
    #[arg(long, value_name = "KEY")]
    pub secret_file: PathBuf,
    /// CSV file of records, with a header row naming the columns (UTF-8); or a PostgreSQL URL
    /// (`postgresql://user@host:port/database[?sslmode=require]`, no password in it) whose
    /// `--table` or `--query` rows are encoded, streamed with `COPY ... TO STDOUT` (lines in
    /// messages are then lines of that CSV stream, its header being line 1).
    #[arg(long, value_name = "CSV|URL")]
    pub input: PathBuf,
    /// With a PostgreSQL `--input`: the query whose rows are encoded.
    #[arg(long, value_name = "SQL", conflicts_with = "table")]
    pub query: Option<String>,
    /// With a PostgreSQL `--input`: the table read whole.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// With a PostgreSQL `--input`: the environment variable holding the password.
    #[arg(long, value_name = "NAME", conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// With a PostgreSQL `--input`: the file whose first line is the password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// With a PostgreSQL `--input` and `sslmode=require`: the PEM file of the CA that signed
    /// the database server's certificate.
    #[arg(long, value_name = "PEM")]
    pub db_ca: Option<PathBuf>,
    /// Where to write the CLKs; written atomically, so nothing appears there if the run fails.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Write rows that cannot be encoded to this CSV (line, field, reason, then the row) and
    /// encode the rest. Without it, the first bad row fails the run and nothing is written.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Encoding threads (default: one per core). A CSV reader thread and the output writer run
    /// beside them.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Never show a progress bar (it only appears on a terminal, for runs longer than 2 s).
    #[arg(long)]
    pub no_progress: bool,
    /// How a Japanese era date outside its era (`平成32年1月1日`, `令和元年4月1日`) in a column
    /// that a date step normalises is read: `strict` rejects it as a bad value (the date
    /// steps' behaviour), `lenient` reads it as the Gregorian date it denotes (2020-01-01,
    /// 2019-04-01) and counts it in the summary. Native schemas only.
    #[arg(long, value_enum, default_value_t = EraDatesArg::Strict)]
    pub era_dates: EraDatesArg,
}

/// `--era-dates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EraDatesArg {
    /// Reject era dates outside their era.
    Strict,
    /// Read them as the Gregorian date they denote.
    Lenient,
}

/// Runs `blindlink encode`.
///
/// # Errors
/// Unreadable files, an invalid schema, a CSV header that does not fit the schema, or (without
/// `--rejects`) the first bad row, named by file, line, field and reason.
pub fn run(args: EncodeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // A run stopped by Ctrl-C or `kill` removes its unfinished output files.
    let _signals = crate::output::remove_partial_files_on_signal()?;
    let schema_text = std::fs::read_to_string(&args.schema)
        .with_context(|| format!("cannot read schema {}", args.schema.display()))?;
    let document = SchemaDocument::parse(&schema_text)
        .with_context(|| format!("invalid schema {}", args.schema.display()))?;
    for warning in document.schema.warnings() {
        eprintln!("warning: {}: {warning}", args.schema.display());
    }
    let secret_bytes = super::keygen::read_key_file(&args.secret_file)?;
    let secret = LinkageSecret::from_bytes(secret_bytes.to_vec())
        .with_context(|| format!("secret file {}", args.secret_file.display()))?;
    let encoder = ClkEncoder::new(&document, &secret)?;
    drop(secret);

    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let url = args.input.to_str().unwrap_or("");
    let postgres = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let spec = blindlink_party::PostgresSpec {
            url: url.to_owned(),
            query: args.query.clone(),
            table: args.table.clone(),
            password_env: args.password_env.clone(),
            password_file: args.password_file.clone(),
            ca: args.db_ca.clone(),
        };
        Some(spec.check("encode --input", Path::to_path_buf)?)
    } else {
        if args.query.is_some() || args.table.is_some() {
            bail!("--query and --table need a postgresql:// --input");
        }
        None
    };
    let (input, input_name, input_size): (Box<dyn Read + Send + '_>, String, u64) = match &postgres
    {
        Some(pg) => {
            let reader = super::party::postgres::copy_reader(pg, "encode --input")?;
            (reader, pg.shown(), 0)
        }
        None => {
            let input_name = args.input.display().to_string();
            let file = std::fs::File::open(&args.input)
                .with_context(|| format!("cannot read {input_name}"))?;
            let input_size = file.metadata().map(|m| m.len()).unwrap_or(0);
            (Box::new(file), input_name, input_size)
        }
    };
    let format = match args.format {
        OutputFormat::Json => ClkFormat::Json,
        OutputFormat::Bin => ClkFormat::Binary,
    };
    let output_name = args.output.display().to_string();
    let output = ClkWriter::new(
        AtomicFile::create(&args.output)?,
        format,
        encoder.filter_bits(),
        Some(encoder.schema_digest()),
    )
    .with_context(|| format!("cannot write {output_name}"))?;
    // Bad rows stream into the rejects file as they are found, so memory stays bounded.
    let mut rejects = match &args.rejects {
        Some(path) => Some(RejectsWriter::create(path)?),
        None => None,
    };
    let progress = Progress::new(input_size, args.no_progress);
    let job = CsvEncoding {
        encoder: &encoder,
        schema: &document.schema,
        input_name: &input_name,
        output_name: &output_name,
        threads,
    };
    let era_columns = match (args.era_dates, &document.schema) {
        (EraDatesArg::Lenient, Schema::Native(native)) => native
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| super::party::input::has_date_step(f.pipeline()))
            .map(|(i, _)| i)
            .collect(),
        _ => Vec::new(),
    };
    let (output, summary) =
        job.run_reading_era_dates(input, output, rejects.as_mut(), &progress, &era_columns)?;
    progress.finish();

    if summary.encoded == 0 && summary.rejected == 0 {
        bail!("{input_name}: no records after the header row");
    }
    // Rejects first: if they cannot be written, the CLK file does not appear either.
    let rejects_file = rejects.map(RejectsWriter::finish).transpose()?;
    output
        .finish()
        .with_context(|| format!("cannot write {output_name}"))?
        .commit()?;
    if let Some(file) = rejects_file {
        file.commit()?;
    }
    let elapsed = started.elapsed();
    println!(
        "encoded {} records ({} rejected{}{}) from {} into {} ({}, {}-bit CLKs) in {:.3} s",
        summary.encoded,
        summary.rejected,
        args.rejects
            .as_ref()
            .map_or(String::new(), |p| format!(", listed in {}", p.display())),
        if args.era_dates == EraDatesArg::Lenient {
            format!(
                ", {} era dates outside their era read as the gregorian date they denote",
                summary.era_dates_read_leniently
            )
        } else {
            String::new()
        },
        input_name,
        output_name,
        match format {
            ClkFormat::Json => "anonlink json",
            ClkFormat::Binary => "binary",
        },
        encoder.filter_bits(),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// Records per batch: the unit the reader hands to a worker and the writer takes back.
const BATCH_RECORDS: usize = 4096;

/// One encoding run over a CSV stream: the pipeline behind `blindlink encode`.
///
/// Three kinds of thread work at once, so no core waits for another's serial step: a reader
/// parses the CSV into batches of `BATCH_RECORDS` (4,096) rows, `threads` workers encode whole batches
/// (each keeps its own warm token and mask caches for the whole run), and the calling thread
/// puts the batches back in input order and streams their CLKs to the output and their bad rows
/// to the rejects file. A fixed number of batches circulates between them, so memory does not
/// grow with the input, and the first bad row in file order is the one reported.
#[derive(Debug)]
pub struct CsvEncoding<'a> {
    /// The encoder, built from the schema and the linkage secret.
    pub encoder: &'a ClkEncoder,
    /// The schema, to bind the CSV header to the encoder's columns.
    pub schema: &'a Schema,
    /// The input's name in error messages.
    pub input_name: &'a str,
    /// The output's name in error messages.
    pub output_name: &'a str,
    /// Worker threads encoding batches (the reader and the writer come in addition).
    pub threads: usize,
}

/// What a [`CsvEncoding`] run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeSummary {
    /// Records encoded and written.
    pub encoded: u64,
    /// Records written to the rejects file.
    pub rejected: u64,
    /// Era dates outside their era read as the Gregorian date they denote.
    pub era_dates_read_leniently: u64,
}

/// A batch of rows travelling reader → worker → writer → reader.
#[derive(Default)]
struct Batch {
    /// Position in the input, counted in batches.
    seq: u64,
    /// Index of the first row among all data rows (seeds randomised hardening).
    first_index: u64,
    rows: Vec<csv::StringRecord>,
    filled: usize,
    clks: Vec<u8>,
    outcomes: Vec<Result<(), EncodingError>>,
    /// Per row: the column whose value is not valid UTF-8 (the row is then rejected, and holds
    /// its values with U+FFFD in place of the bad bytes).
    bad_utf8: Vec<Option<String>>,
    /// Input the reader could not parse after the rows of this batch: the run fails there.
    read_error: Option<String>,
    /// Era dates of this batch read leniently.
    era_read: u64,
}

impl CsvEncoding<'_> {
    /// Encodes every data row of `input` (a CSV with a header row) into `output`, returning
    /// it for the caller to finish, with the counts.
    ///
    /// # Errors
    /// A header that does not fit the schema, malformed CSV, a write error, or (without
    /// `rejects`) the first bad row, named by input, line, field and reason.
    pub fn run<W: Write + Seek>(
        &self,
        input: impl Read + Send,
        output: ClkWriter<W>,
        rejects: Option<&mut RejectsWriter>,
        progress: &Progress,
    ) -> anyhow::Result<(ClkWriter<W>, EncodeSummary)> {
        self.run_reading_era_dates(input, output, rejects, progress, &[])
    }

    /// As [`CsvEncoding::run`], reading the values at `era_columns` (positions among the
    /// encoder's values) that are Japanese era dates outside their era as the Gregorian date
    /// they denote ([`EraReading::Lenient`]), counted in the summary.
    ///
    /// # Errors
    /// As [`CsvEncoding::run`].
    pub fn run_reading_era_dates<W: Write + Seek>(
        &self,
        input: impl Read + Send,
        output: ClkWriter<W>,
        rejects: Option<&mut RejectsWriter>,
        progress: &Progress,
        era_columns: &[usize],
    ) -> anyhow::Result<(ClkWriter<W>, EncodeSummary)> {
        let input_name = self.input_name;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(input);
        let header = reader
            .headers()
            .with_context(|| format!("{input_name}:1: cannot read the header row"))?
            .clone();
        if header.is_empty() {
            bail!("{input_name}: the file is empty (a header row is required)");
        }
        let header_fields: Vec<&str> = header.iter().collect();
        let columns = self
            .schema
            .bind_header(&header_fields)
            .with_context(|| format!("{input_name}:1"))?;
        let mut rejects = rejects;
        if let Some(rejects) = rejects.as_deref_mut() {
            rejects.write_header(&header)?;
        }

        let threads = self.threads.max(1);
        let (free_tx, free_rx) = mpsc::channel::<Batch>();
        for _ in 0..2 * threads + 2 {
            // The receiver is alive: this cannot fail.
            let _ = free_tx.send(Batch::default());
        }
        let (job_tx, job_rx) = mpsc::channel::<Batch>();
        let job_rx = Mutex::new(job_rx);
        let (done_tx, done_rx) = mpsc::channel::<Batch>();
        let header_len = header.len();
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("csv-reader".into())
                .spawn_scoped(scope, move || {
                    read_batches(reader, input_name, &free_rx, &job_tx);
                })
                .context("cannot start the csv reader thread")?;
            for worker in 0..threads {
                let done_tx = done_tx.clone();
                let (job_rx, columns) = (&job_rx, &columns);
                let work = move || {
                    let mut scratch = EncoderScratch::default();
                    loop {
                        let next = match job_rx.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => break,
                        };
                        let Ok(mut batch) = next else { break };
                        self.encode_batch(
                            &mut batch,
                            columns,
                            header_len,
                            &mut scratch,
                            era_columns,
                        );
                        if done_tx.send(batch).is_err() {
                            break;
                        }
                    }
                };
                std::thread::Builder::new()
                    .name(format!("encoder-{worker}"))
                    .spawn_scoped(scope, work)
                    .context("cannot start encoding threads")?;
            }
            drop(done_tx);
            // Returning (also early, on the first error) drops `free_tx` and `done_rx`, which
            // stops the reader and then the workers before the scope joins them.
            self.write_in_order(output, rejects, header_len, free_tx, done_rx, progress)
        })
    }

    /// Encodes the rows of `batch` into its CLK buffer, recording each row's outcome.
    fn encode_batch(
        &self,
        batch: &mut Batch,
        columns: &[usize],
        header_len: usize,
        scratch: &mut EncoderScratch,
        era_columns: &[usize],
    ) {
        let bytes_per_clk = self.encoder.bytes_per_clk();
        batch.clks.resize(batch.filled * bytes_per_clk, 0);
        batch.outcomes.clear();
        batch.era_read = 0;
        let mut dates: Vec<String> = vec![String::new(); era_columns.len()];
        let mut read = vec![false; era_columns.len()];
        let mut values: Vec<&str> = Vec::with_capacity(columns.len());
        for (i, (row, clk)) in batch.rows[..batch.filled]
            .iter()
            .zip(batch.clks.chunks_exact_mut(bytes_per_clk))
            .enumerate()
        {
            if let Some(Some(field)) = batch.bad_utf8.get(i) {
                batch.outcomes.push(Err(EncodingError::InvalidValue {
                    field: field.clone(),
                    reason: "the value is not valid UTF-8".to_owned(),
                }));
                continue;
            }
            if row.len() != header_len {
                batch.outcomes.push(Err(EncodingError::RecordLength {
                    expected: header_len,
                    found: row.len(),
                }));
                continue;
            }
            for (slot, &j) in era_columns.iter().enumerate() {
                let value = columns.get(j).and_then(|&c| row.get(c)).unwrap_or("");
                read[slot] = normalise_date_with(
                    value,
                    NumericOrder::YearFirst,
                    EraReading::Lenient,
                    &mut dates[slot],
                ) == Ok(true);
            }
            values.clear();
            values.extend(columns.iter().map(|&c| row.get(c).unwrap_or("")));
            let index = batch.first_index + i as u64;
            let outcome = if read.contains(&true) {
                // Rare: the row with its era dates replaced.
                let mut lenient = values.clone();
                for (slot, &j) in era_columns.iter().enumerate() {
                    if read[slot] {
                        lenient[j] = dates[slot].as_str();
                        batch.era_read += 1;
                    }
                }
                self.encoder.encode(&lenient, index, scratch, clk)
            } else {
                self.encoder.encode(&values, index, scratch, clk)
            };
            batch.outcomes.push(outcome);
        }
    }

    /// The writer's side: takes encoded batches as they come, and handles them in input order.
    fn write_in_order<W: Write + Seek>(
        &self,
        mut output: ClkWriter<W>,
        mut rejects: Option<&mut RejectsWriter>,
        header_len: usize,
        free_tx: mpsc::Sender<Batch>,
        done_rx: mpsc::Receiver<Batch>,
        progress: &Progress,
    ) -> anyhow::Result<(ClkWriter<W>, EncodeSummary)> {
        let mut pending = BTreeMap::new();
        let mut next = 0;
        let mut era_read = 0;
        for batch in done_rx {
            pending.insert(batch.seq, batch);
            while let Some(batch) = pending.remove(&next) {
                self.write_batch(&batch, &mut output, rejects.as_deref_mut(), header_len)?;
                era_read += batch.era_read;
                progress.update(
                    batch.rows[..batch.filled]
                        .last()
                        .and_then(|r| r.position())
                        .map_or(0, csv::Position::byte),
                    batch.first_index + batch.filled as u64,
                );
                next += 1;
                // The reader may have stopped at the end of the input; then nobody needs it.
                let _ = free_tx.send(batch);
            }
        }
        if !pending.is_empty() {
            bail!(
                "{}: an encoding worker stopped unexpectedly",
                self.input_name
            );
        }
        let summary = EncodeSummary {
            encoded: output.len(),
            rejected: rejects.as_deref().map_or(0, |r| r.count),
            era_dates_read_leniently: era_read,
        };
        Ok((output, summary))
    }

    /// Writes one batch's CLKs and rejects; fails on its first bad row without `rejects`.
    fn write_batch<W: Write + Seek>(
        &self,
        batch: &Batch,
        output: &mut ClkWriter<W>,
        mut rejects: Option<&mut RejectsWriter>,
        header_len: usize,
    ) -> anyhow::Result<()> {
        let input_name = self.input_name;
        let bytes_per_clk = self.encoder.bytes_per_clk();
        let write = |output: &mut ClkWriter<W>, rows: std::ops::Range<usize>| {
            output
                .write(&batch.clks[rows.start * bytes_per_clk..rows.end * bytes_per_clk])
                .with_context(|| format!("cannot write {}", self.output_name))
        };
        let mut good_from = 0;
        for (i, outcome) in batch.outcomes.iter().enumerate() {
            let Err(error) = outcome else { continue };
            write(output, good_from..i)?;
            good_from = i + 1;
            let row = &batch.rows[i];
            let line = row.position().map_or(0, csv::Position::line);
            let (field, reason) = describe_rejection(error, header_len);
            let Some(rejects) = rejects.as_deref_mut() else {
                if field.is_empty() {
                    bail!("{input_name}:{line}: {reason}");
                }
                bail!("{input_name}:{line}: field '{field}': {reason}");
            };
            rejects.write(line, &field, &reason, row)?;
        }
        write(output, good_from..batch.filled)?;
        if let Some(error) = &batch.read_error {
            bail!("{error}");
        }
        Ok(())
    }
}

/// The reader's side: fills free batches with parsed rows and hands them to the workers, until
/// the input ends, it cannot be parsed, or the writer stops taking batches back.
fn read_batches(
    mut reader: csv::Reader<impl Read>,
    input_name: &str,
    free_rx: &mpsc::Receiver<Batch>,
    job_tx: &mpsc::Sender<Batch>,
) {
    let mut seq = 0;
    let mut first_index = 0;
    while let Ok(mut batch) = free_rx.recv() {
        batch.seq = seq;
        batch.first_index = first_index;
        batch.filled = 0;
        batch.read_error = None;
        let mut at_end = false;
        while batch.filled < BATCH_RECORDS {
            if batch.rows.len() == batch.filled {
                batch.rows.push(csv::StringRecord::new());
            }
            if batch.bad_utf8.len() <= batch.filled {
                batch.bad_utf8.resize(batch.filled + 1, None);
            }
            // Read as bytes, then checked (no copy): a row that is not UTF-8 is rejected by
            // itself with its line instead of ending the run.
            let mut bytes = std::mem::take(&mut batch.rows[batch.filled]).into_byte_record();
            match reader.read_byte_record(&mut bytes) {
                Ok(true) => {
                    let slot = batch.filled;
                    match csv::StringRecord::from_byte_record(bytes) {
                        Ok(row) => {
                            batch.rows[slot] = row;
                            batch.bad_utf8[slot] = None;
                        }
                        Err(e) => {
                            let column = e.utf8_error().field();
                            let bytes = e.into_byte_record();
                            let mut row = csv::StringRecord::new();
                            for value in &bytes {
                                row.push_field(&String::from_utf8_lossy(value));
                            }
                            row.set_position(bytes.position().cloned());
                            let field = reader
                                .byte_headers()
                                .ok()
                                .and_then(|h| h.get(column))
                                .map_or_else(
                                    || format!("column {}", column + 1),
                                    |h| String::from_utf8_lossy(h).into_owned(),
                                );
                            batch.rows[slot] = row;
                            batch.bad_utf8[slot] = Some(field);
                        }
                    }
                    batch.filled += 1;
                }
                Ok(false) => {
                    at_end = true;
                    break;
                }
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    batch.read_error = Some(format!("{input_name}:{line}: malformed csv: {e}"));
                    at_end = true;
                    break;
                }
            }
        }
        if batch.filled == 0 && batch.read_error.is_none() {
            return;
        }
        seq += 1;
        first_index += batch.filled as u64;
        if job_tx.send(batch).is_err() || at_end {
            return;
        }
    }
}

/// Field and reason of a rejected row, for the error message and the rejects file.
fn describe_rejection(error: &EncodingError, header_len: usize) -> (String, String) {
    match error {
        EncodingError::InvalidValue { field, reason } => (field.clone(), reason.clone()),
        EncodingError::RecordLength { found, .. } => (
            String::new(),
            format!("the row has {found} fields but the header has {header_len}"),
        ),
        other => (String::new(), other.to_string()),
    }
}

/// The `--rejects` CSV: line, field, reason, then the row as read.
#[derive(Debug)]
pub struct RejectsWriter {
    writer: csv::Writer<AtomicFile>,
    path: PathBuf,
    count: u64,
}

impl RejectsWriter {
    fn create(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            // Flexible: a row with the wrong number of fields is rejected as it was read.
            writer: csv::WriterBuilder::new()
                .flexible(true)
                .from_writer(AtomicFile::create(path)?),
            path: path.to_path_buf(),
            count: 0,
        })
    }

    /// Writes the header row: line, field, reason, then the input's header.
    fn write_header(&mut self, header: &csv::StringRecord) -> anyhow::Result<()> {
        let mut head = vec!["line", "field", "reason"];
        head.extend(header.iter());
        self.writer
            .write_record(&head)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn write(
        &mut self,
        line: u64,
        field: &str,
        reason: &str,
        row: &csv::StringRecord,
    ) -> anyhow::Result<()> {
        let line = line.to_string();
        let mut fields = vec![line.as_str(), field, reason];
        fields.extend(row.iter());
        self.writer
            .write_record(&fields)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.count += 1;
        Ok(())
    }

    /// Flushes the CSV writer; the file still has to be committed.
    fn finish(self) -> anyhow::Result<AtomicFile> {
        let path = self.path;
        self.writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))
    }
}

/// A progress bar on stderr that appears only on a terminal and only once a run has taken
/// more than two seconds, so quick runs and redirected output stay clean.
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    /// A bar for an input of `total_bytes`; never shown when `disabled`.
    pub fn new(total_bytes: u64, disabled: bool) -> Self {
        let bar = (!disabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total_bytes),
                indicatif::ProgressDrawTarget::hidden(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} encoding [{bar:40}] {percent:>3}% {msg} ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            shown: std::cell::Cell::new(false),
        }
    }

    fn update(&self, byte: u64, records: u64) {
        let Some(bar) = &self.bar else { return };
        if !self.shown.get() && self.started.elapsed() > Duration::from_secs(2) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
        bar.set_position(byte);
        bar.set_message(format!("{records} records"));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
