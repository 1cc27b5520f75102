//! `blindlink encode`: CSV records → CLKs, streamed in chunks and encoded on all cores.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindlink_encoding::format::{ClkFormat, ClkSet, write_clks};
use blindlink_encoding::{
    ClkEncoder, EncoderScratch, EncodingError, LinkageSecret, SchemaDocument,
};
use rayon::prelude::*;

use crate::output::AtomicFile;

/// Records each worker encodes per chunk; a chunk holds `threads ×` this many rows.
const RECORDS_PER_WORKER: usize = 4096;

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
    /// CSV file of records, with a header row naming the columns (UTF-8).
    #[arg(long, value_name = "CSV")]
    pub input: PathBuf,
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
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Never show a progress bar (it only appears on a terminal, for runs longer than 2 s).
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `blindlink encode`.
///
/// # Errors
/// Unreadable files, an invalid schema, a CSV header that does not fit the schema, or (without
/// `--rejects`) the first bad row, named by file, line, field and reason.
pub fn run(args: EncodeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let schema_text = std::fs::read_to_string(&args.schema)
        .with_context(|| format!("cannot read schema {}", args.schema.display()))?;
    let document = SchemaDocument::parse(&schema_text)
        .with_context(|| format!("invalid schema {}", args.schema.display()))?;
    for warning in document.schema.warnings() {
        eprintln!("warning: {}: {warning}", args.schema.display());
    }
    let secret_bytes = std::fs::read(&args.secret_file)
        .with_context(|| format!("cannot read secret file {}", args.secret_file.display()))?;
    let secret = LinkageSecret::from_bytes(secret_bytes)
        .with_context(|| format!("secret file {}", args.secret_file.display()))?;
    let encoder = ClkEncoder::new(&document, &secret)?;
    drop(secret);

    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;

    let input_name = args.input.display().to_string();
    let file =
        std::fs::File::open(&args.input).with_context(|| format!("cannot read {input_name}"))?;
    let input_size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(file);
    let header = reader
        .headers()
        .with_context(|| format!("{input_name}:1: cannot read the header row"))?
        .clone();
    if header.is_empty() {
        bail!("{input_name}: the file is empty (a header row is required)");
    }
    let header_fields: Vec<&str> = header.iter().collect();
    let columns = document
        .schema
        .bind_header(&header_fields)
        .with_context(|| format!("{input_name}:1"))?;

    let mut clks = ClkSet::new(encoder.filter_bits())?;
    clks.set_schema_digest(encoder.schema_digest());
    // Bad rows stream into the rejects file as they are found, so memory stays bounded.
    let mut rejects = match &args.rejects {
        Some(path) => Some(RejectsWriter::create(path, &header)?),
        None => None,
    };
    let mut scratches: Vec<EncoderScratch> =
        (0..threads).map(|_| EncoderScratch::default()).collect();
    let chunk_len = RECORDS_PER_WORKER * threads;
    let mut records: Vec<csv::StringRecord> = Vec::with_capacity(chunk_len);
    let mut outcomes: Vec<Result<(), EncodingError>> = Vec::with_capacity(chunk_len);
    let bytes_per_clk = encoder.bytes_per_clk();
    let mut buffer = vec![0u8; chunk_len * bytes_per_clk];
    let mut record_index: u64 = 0;
    let progress = Progress::new(input_size, args.no_progress);

    loop {
        // Read one chunk, reusing the record buffers.
        let mut filled = 0;
        while filled < chunk_len {
            if records.len() == filled {
                records.push(csv::StringRecord::new());
            }
            let more = reader.read_record(&mut records[filled]).map_err(|e| {
                let line = e.position().map_or(0, csv::Position::line);
                anyhow::anyhow!("{input_name}:{line}: malformed csv: {e}")
            })?;
            if !more {
                break;
            }
            filled += 1;
        }
        if filled == 0 {
            break;
        }
        let chunk = &records[..filled];
        outcomes.clear();
        outcomes.resize_with(filled, || Ok(()));
        let out = &mut buffer[..filled * bytes_per_clk];
        let part = filled.div_ceil(threads);
        let encoder = &encoder;
        let columns = &columns;
        let header_len = header.len();
        let first_index = record_index;
        pool.install(|| {
            scratches
                .par_iter_mut()
                .zip(chunk.par_chunks(part))
                .zip(out.par_chunks_mut(part * bytes_per_clk))
                .zip(outcomes.par_chunks_mut(part))
                .enumerate()
                .for_each(|(p, (((scratch, rows), out), results))| {
                    let mut values: Vec<&str> = Vec::with_capacity(columns.len());
                    for (i, (row, (clk, result))) in rows
                        .iter()
                        .zip(out.chunks_exact_mut(bytes_per_clk).zip(results))
                        .enumerate()
                    {
                        if row.len() != header_len {
                            *result = Err(EncodingError::RecordLength {
                                expected: header_len,
                                found: row.len(),
                            });
                            continue;
                        }
                        values.clear();
                        values.extend(columns.iter().map(|&c| row.get(c).unwrap_or("")));
                        let index = first_index + (p * part + i) as u64;
                        *result = encoder.encode(&values, index, scratch, clk);
                    }
                });
        });
        for (i, (row, outcome)) in chunk.iter().zip(&outcomes).enumerate() {
            match outcome {
                Ok(()) => clks.push(&buffer[i * bytes_per_clk..(i + 1) * bytes_per_clk])?,
                Err(e) => {
                    let line = row.position().map_or(0, csv::Position::line);
                    let (field, reason) = describe_rejection(e, header_len);
                    let Some(rejects) = rejects.as_mut() else {
                        if field.is_empty() {
                            bail!("{input_name}:{line}: {reason}");
                        }
                        bail!("{input_name}:{line}: field '{field}': {reason}");
                    };
                    rejects.write(line, &field, &reason, row)?;
                }
            }
        }
        record_index += filled as u64;
        progress.update(
            chunk
                .last()
                .and_then(|r| r.position())
                .map_or(0, csv::Position::byte),
            record_index,
        );
    }
    progress.finish();

    let rejected = rejects.as_ref().map_or(0, |r| r.count);
    if clks.is_empty() && rejected == 0 {
        bail!("{input_name}: no records after the header row");
    }
    let format = match args.format {
        OutputFormat::Json => ClkFormat::Json,
        OutputFormat::Bin => ClkFormat::Binary,
    };
    // Rejects first: if they cannot be written, the CLK file does not appear either.
    let rejects_file = rejects.map(RejectsWriter::finish).transpose()?;
    let mut output = AtomicFile::create(&args.output)?;
    write_clks(&clks, format, &mut output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    output.commit()?;
    if let Some(file) = rejects_file {
        file.commit()?;
    }
    let elapsed = started.elapsed();
    println!(
        "encoded {} records ({} rejected{}) from {} into {} ({}, {}-bit CLKs) in {:.3} s",
        clks.len(),
        rejected,
        args.rejects
            .as_ref()
            .map_or(String::new(), |p| format!(", listed in {}", p.display())),
        input_name,
        args.output.display(),
        match format {
            ClkFormat::Json => "anonlink json",
            ClkFormat::Binary => "binary",
        },
        encoder.filter_bits(),
        elapsed.as_secs_f64()
    );
    Ok(())
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
struct RejectsWriter {
    writer: csv::Writer<AtomicFile>,
    path: PathBuf,
    count: u64,
}

impl RejectsWriter {
    fn create(path: &Path, header: &csv::StringRecord) -> anyhow::Result<Self> {
        let mut writer = csv::Writer::from_writer(AtomicFile::create(path)?);
        let mut head = vec!["line", "field", "reason"];
        head.extend(header.iter());
        writer
            .write_record(&head)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            writer,
            path: path.to_path_buf(),
            count: 0,
        })
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
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    fn new(total_bytes: u64, disabled: bool) -> Self {
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
