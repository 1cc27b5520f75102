//! `blindlink split --shards N --config party.toml --out DIR`: one pass over a party's input
//! CSV writes each shard's rows to its own file, `DIR/<input stem>.shard-I-of-N.csv` (the
//! header, then the rows in input order), so that the `N` shard runs (`serve`/`link --shard
//! I/N` with `[input] csv` pointing at shard I's file) each read their own rows instead of the
//! whole file `N` times.
//!
//! A row goes where a sharded build keeps it ([`RowSharder`]): the keyed hash of its first
//! match key, under the config's linkage secret; rows a build rejects before their shard is
//! known (a wrong field count, invalid UTF-8, an empty id) and rows without that key go to
//! shard 0, and a row whose id repeats an earlier one goes with it. The shard runs therefore
//! keep exactly the records they would keep from the whole file, and report the same bad
//! rows, named by their line in the shard's file. Nothing is normalised beyond the first key
//! and nothing is encoded here.
//!
//! The files are written atomically, together: a failed split leaves none of them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_party::{InputSource, RecordSource, RowSharder, Shard, ShardAssigner};

use super::party::{PartyCommand, PartyConfig};
use crate::output::AtomicFile;

/// The most shards `split` writes at once: one open file each.
pub const MAX_SPLIT_SHARDS: u64 = 1024;

/// Arguments of `blindlink split`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  blindlink split --shards 4 --config registry.toml --out split/\n  \
                  # then, for I in 0..4: [input] csv = \"split/registry.shard-I-of-4.csv\" and\n  \
                  blindlink serve --config registry-I.toml --shard I/4"
)]
pub struct SplitArgs {
    /// How many shards (N of `--shard I/N`).
    #[arg(long)]
    pub shards: u64,
    /// The party's TOML config (`serve`'s or `link`'s): its input, key, match keys and
    /// `[input]` options.
    #[arg(long)]
    pub config: PathBuf,
    /// The directory the shard files go to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// No summary on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `blindlink split`.
///
/// # Errors
/// A shard count of 0 or over [`MAX_SPLIT_SHARDS`], a config that cannot be read or whose
/// input is not a CSV file, an unreadable input, schema or key file, a missing column, or a
/// shard file that cannot be written.
pub fn run(args: SplitArgs) -> anyhow::Result<()> {
    let count = Shard::new(0, args.shards)
        .map_err(|why| anyhow::anyhow!("--shards {}: {why}", args.shards))?
        .count();
    if u64::from(count) > MAX_SPLIT_SHARDS {
        bail!(
            "--shards {count}: split writes one file per shard and keeps them all open; at most \
             {MAX_SPLIT_SHARDS}"
        );
    }
    let config = load_config(&args.config)?;
    let shown = config.source.display().to_string();
    let InputSource::Csv(input) = &config.input else {
        bail!(
            "{shown}: [input] is a postgres query; split reads a CSV file (export the query \
             to CSV, or give each shard's query its own WHERE clause)"
        );
    };
    let (schema, secret, linkage_secret) = super::party::read_schema_and_key(&config)?;
    let assigner = ShardAssigner::new(&linkage_secret, count);
    drop((secret, linkage_secret));

    let source = RecordSource::Csv(input.display().to_string());
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::new(file));
    let header = reader
        .byte_headers()
        .with_context(|| format!("{}: cannot read the header row", source.header_at()))?
        .clone();
    let header_text = csv::StringRecord::from_byte_record(header.clone()).map_err(|e| {
        anyhow::anyhow!(
            "{}: the header row is not valid UTF-8 (column {})",
            source.header_at(),
            e.utf8_error().field() + 1
        )
    })?;
    let header_fields: Vec<&str> = header_text.iter().collect();
    let spec = blindlink_party::RecordsSpec {
        columns: blindlink_party::InputColumns {
            id_column: &config.id_column,
            match_keys: &config.match_keys,
            schema_columns: &config.schema_columns,
            combined_columns: &config.combined_columns,
        },
        schema: &schema,
        encoder: None,
        tokenizer: None,
        options: blindlink_party::InputOptions {
            invalid_rows: config.invalid_rows,
            era_dates: config.era_dates,
        },
        shard: None,
    };
    let mut sharder = RowSharder::new(&source, &header_fields, spec, assigner)?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stem = input
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| args.out.join(shard_file_name(&stem, i, count)))
        .collect();
    let mut writers = paths
        .iter()
        .map(|path| -> anyhow::Result<_> {
            let mut writer = csv::Writer::from_writer(AtomicFile::create(path)?);
            writer
                .write_byte_record(&header)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(writer)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = vec![0u64; writers.len()];
    let mut row = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                bail!(
                    "{}:{line}: cannot read the row: {}",
                    source.shown(),
                    super::party::input::error_chain(&e)
                );
            }
        }
        let mut fields: Vec<&str> = Vec::with_capacity(header.len());
        let mut text = true;
        for value in &row {
            match std::str::from_utf8(value) {
                Ok(value) => fields.push(value),
                Err(_) => {
                    text = false;
                    break;
                }
            }
        }
        // Unreadable rows go to shard 0, whose run reports them.
        let shard = if text { sharder.shard_of(&fields) } else { 0 } as usize;
        writers[shard]
            .write_byte_record(&row)
            .with_context(|| format!("cannot write {}", paths[shard].display()))?;
        rows[shard] += 1;
    }
    let files = writers
        .into_iter()
        .zip(&paths)
        .map(|(writer, path)| {
            writer
                .into_inner()
                .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for file in files {
        file.commit()?;
    }
    if !args.quiet {
        let total: u64 = rows.iter().sum();
        let per_shard: Vec<String> = rows.iter().map(u64::to_string).collect();
        eprintln!(
            "split {} ({total} rows) into {count} files in {}: {} rows",
            source.shown(),
            args.out.display(),
            per_shard.join(", ")
        );
    }
    Ok(())
}

/// The file of shard `index` of `count` for an input named `stem`:
/// `<stem>.shard-I-of-N.csv`.
#[must_use]
pub fn shard_file_name(stem: &str, index: u32, count: u32) -> String {
    format!("{stem}.shard-{index}-of-{count}.csv")
}

/// The config at `path`, read as `serve`'s if it has a `[server]` section, else as `link`'s.
fn load_config(path: &Path) -> anyhow::Result<PartyConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let serves = toml::from_str::<toml::Table>(&text).is_ok_and(|t| t.contains_key("server"));
    let command = if serves {
        PartyCommand::Serve
    } else {
        PartyCommand::Link
    };
    PartyConfig::parse(&text, path, command)
}
