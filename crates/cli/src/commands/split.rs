//! `blindlink split --shards N --config party.toml --out DIR`: one pass over a party's input
//! CSV writes each shard's rows to its own file, `DIR/<input stem>.shard-I-of-N.csv` (the
//! header, then the rows in input order), so that the `N` shard runs (`serve`/`link --shard
//! I/N --input DIR/<stem>.shard-I-of-N.csv`, one config for all) each read their own rows
//! instead of the whole file `N` times. A run on such a file checks that it is its shard's
//! (the name, and no record of another shard in it).
//!
//! A row goes where a sharded build keeps it ([`RowSharder`]): the keyed hash of its first
//! match key (fuzzy: of its `[shard] key`), under the config's linkage secret; rows a build rejects before their shard is
//! known (a wrong field count, invalid UTF-8, an empty id) and rows without that key go to
//! shard 0, and a row whose id repeats an earlier one goes with it. The shard runs therefore
//! keep exactly the records they would keep from the whole file, and report the same bad
//! rows, named by their line in the shard's file. Nothing is normalised beyond the first key
//! and nothing is encoded here.
//!
//! **A cascade stage** (`--stage K --previous DIR`, K > 0): the rows of the records that the
//! merged output of stages `0..K` in `DIR` left unlinked, routed by the keyed hash of key `K`
//! under round `K`'s purpose (as stage `K`'s shards assign them), into
//! `DIR/<input stem>.stage-K.shard-I-of-N.csv`; rows of records linked earlier, and rows stage
//! 0 rejected (it listed them), are left out. The previous output is checked as `serve`/`link
//! --previous` check it (this party's, of this cascade), and against the whole input as it is
//! read (the same row count, every record it lists present), so that stage `K`'s shard run on
//! its file checks only that the file is its own and that its records are carried and in its
//! shard (`party/stage.rs`). A shard that would get no record is refused (its run would refuse
//! an empty input): each stage may have its own, smaller, shard count.
//!
//! The files are written atomically, together: a failed split leaves none of them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_party::{CascadeStage, InputSource, RecordSource, RowSharder, Shard, ShardAssigner};

use super::party::{PartyCommand, PartyConfig, stage};
use crate::output::AtomicFile;

/// The most shards `split` writes at once: one open file each.
pub const MAX_SPLIT_SHARDS: u64 = 1024;

/// Arguments of `blindlink split`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  blindlink split --shards 4 --config registry.toml --out split/\n  \
                  # then, for I in 0..4:\n  \
                  blindlink serve --config registry.toml --shard I/4 --input \
                  split/registry.shard-I-of-4.csv"
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
    /// Split for stage K of an exact cascade (needs `--previous` for K > 0): only the records
    /// stages 0 to K-1 left unlinked, routed by key K, into `<stem>.stage-K.shard-I-of-N.csv`.
    #[arg(long, value_name = "K")]
    pub stage: Option<u64>,
    /// The merged output of stages 0 to K-1 (as `serve`/`link --previous` takes it).
    #[arg(long, value_name = "DIR")]
    pub previous: Option<PathBuf>,
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
    let mut config = load_config(&args.config)?;
    let shown = config.source.display().to_string();
    // Stage K > 0: the previous stages' merged output, checked against the config now and
    // against the whole input as it is read.
    let mut previous = match (args.stage, &args.previous) {
        (None | Some(0), None) => None,
        (None | Some(0), Some(dir)) => bail!(
            "--previous {}: only a cascade stage K > 0 reads a previous output (give --stage K)",
            dir.display()
        ),
        (Some(round), None) => bail!(
            "--stage {round} needs the merged output of the stages before it (--previous DIR)"
        ),
        (Some(round), Some(dir)) => {
            let stage = CascadeStage::new(round, config.match_keys.len())
                .map_err(|why| anyhow::anyhow!("{shown}: --stage {round}: {why}"))?;
            config.stage = Some(stage);
            config.previous = Some(dir.clone());
            config.shard = Some(Shard::new(0, u64::from(count)).map_err(anyhow::Error::msg)?);
            blindlink_party::check_stage(&config)?;
            let keys: Vec<String> = config.match_keys.iter().map(|k| k.name.clone()).collect();
            Some((
                stage,
                stage::read_previous(&config, &keys, stage, dir, None, None)?,
            ))
        }
    };
    let round = previous.as_ref().map_or(0, |(stage, _)| stage.round());
    // A fuzzy config without `[shard] key`, or clk-exchange, is refused as its shard runs
    // would be. An exact cascade splits by key 0 without --stage: stage 0's split.
    let staged = config.stage;
    if staged.is_none() {
        config.stage = CascadeStage::new(0, config.match_keys.len()).ok();
    }
    blindlink_party::check_shardable(
        &config,
        Shard::new(0, u64::from(count)).map_err(anyhow::Error::msg)?,
    )?;
    config.stage = staged;
    let InputSource::Csv(input) = &config.input else {
        bail!(
            "{shown}: [input] is a postgres query; split reads a CSV file (export the query \
             to CSV, or give each shard's query its own WHERE clause)"
        );
    };
    let (schema, secret, linkage_secret) = super::party::read_schema_and_key(&config)?;
    let assigner = ShardAssigner::for_round(&linkage_secret, count, round);
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
    // The sharder routes by its first key: the stage's, or fuzzy's `[shard] key`.
    let keys = match config
        .shard_key
        .as_ref()
        .and_then(|name| config.match_keys.iter().position(|k| &k.name == name))
    {
        Some(k) if round == 0 => &config.match_keys[k..=k],
        _ => &config.match_keys[round as usize..],
    };
    let spec = blindlink_party::RecordsSpec {
        columns: config.input_columns(keys),
        schema: &schema,
        encoder: None,
        tokenizer: None,
        options: blindlink_party::InputOptions {
            invalid_rows: config.invalid_rows,
            era_dates: config.era_dates,
        },
        shard: None,
        own_shard_file: false,
    };
    let mut sharder = RowSharder::new(&source, &header_fields, spec, assigner)?;
    let id_column = header_fields
        .iter()
        .position(|h| *h == config.id_column)
        .or_else(|| {
            header_fields
                .iter()
                .position(|h| h.trim() == config.id_column)
        })
        .unwrap_or(0);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stem = input
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| {
            Ok(args.out.join(if previous.is_some() {
                let shard =
                    Shard::new(u64::from(i), u64::from(count)).map_err(anyhow::Error::msg)?;
                stage::stage_split_file_name(&stem, round, shard)
            } else {
                shard_file_name(&stem, i, count)
            }))
        })
        .collect::<anyhow::Result<_>>()?;
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
    let (mut rows_read, mut dropped) = (0u64, 0u64);
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
        rows_read += 1;
        if let Some((_, output)) = &mut previous {
            // Stage K: the records stages 0..K left unlinked only; the rows they linked, and
            // the rows stage 0 rejected (it reported them), stay out.
            let id = fields
                .get(id_column)
                .filter(|_| text && fields.len() == header.len())
                .map(|id| id.trim());
            let carried = match id {
                Some(id) if !id.is_empty() => output.take(id) == Ok(true),
                _ => false,
            };
            if !carried {
                dropped += 1;
                continue;
            }
        }
        // Unreadable rows go to shard 0, whose run reports them.
        let shard = if text { sharder.shard_of(&fields) } else { 0 } as usize;
        writers[shard]
            .write_byte_record(&row)
            .with_context(|| format!("cannot write {}", paths[shard].display()))?;
        rows[shard] += 1;
    }
    if let Some((_, output)) = &previous {
        // The whole input must be the one the previous stages read: the same rows, every
        // record they list.
        let rejected = rows_read.saturating_sub(output.records() as u64);
        output.check_rows(rows_read, rejected)?;
        if output.unseen() > 0 {
            bail!(
                "{}: {} lists {} records, and {} of them are not in {}: it is the output of \
                 another input",
                output.prefix(),
                output.links_path().display(),
                output.records(),
                output.unseen(),
                source.shown()
            );
        }
    }
    if let Some((stage, _)) = &previous {
        // An empty file would make its shard's run refuse an empty input, and its peer's
        // shard wait for a session: refused here, before any file is written.
        let empty: Vec<String> = rows
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| format!("{i}/{count}"))
            .collect();
        if !empty.is_empty() {
            bail!(
                "{}: stage {}: no record of the {} carried into the stage falls in shard {}; \
                 a stage's split gives every shard at least one record: split this stage into \
                 fewer shards (each stage may have its own count) or run its shards on the \
                 whole input",
                source.shown(),
                stage.round(),
                rows.iter().sum::<u64>(),
                empty.join(", ")
            );
        }
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
        let per_shard: Vec<String> = rows.iter().map(u64::to_string).collect();
        let stage = previous.as_ref().map_or_else(String::new, |(stage, _)| {
            format!(
                " for stage {}: {} records carried into it ({dropped} rows linked by earlier \
                 stages or rejected by stage 0 left out)",
                stage.round(),
                rows_read - dropped
            )
        });
        eprintln!(
            "split {} ({rows_read} rows){stage} into {count} files in {}: {} rows",
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
