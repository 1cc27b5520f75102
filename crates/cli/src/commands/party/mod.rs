//! What `serve`, `link` and `demo` share: the party config, reading the input CSV into match
//! keys, CLKs and field tokens, the TLS material, and writing the outputs (`links.csv`, `ledger.json`,
//! `report.txt`) all at once, atomically, after a session completed — a failed session writes
//! nothing.

pub mod config;
pub mod fields;
pub mod input;
pub mod outputs;
pub mod postgres;
pub mod session;
pub mod stage;

use std::time::{Duration, Instant};

use anyhow::Context;
use blindlink_encoding::{ClkEncoder, LinkageSecret, SchemaDocument};
use blindlink_party::InputSource;
use blindlink_service::{TlsCredentials, TransportSecurity};
use zeroize::Zeroizing;

pub use config::{PartyCommand, PartyConfig, TlsFiles};
pub use input::PartyRecords;

/// The command-line arguments `serve` and `link` share.
#[derive(Debug, clap::Args)]
pub struct PartyArgs {
    /// The party's TOML config.
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// No progress messages.
    #[arg(long)]
    pub quiet: bool,
    /// Allow plaintext gRPC on a loopback address, for experiments only; the config must also
    /// say `tls.insecure_loopback = true`. Without both, mutual TLS is required.
    #[arg(long)]
    pub insecure_loopback: bool,
    /// Run shard I of N (e.g. `--shard 0/4`, overriding the config's `[shard]`): only the
    /// records whose keyed match-key hash falls in bucket I take part, the handshake commits
    /// to I/N, and the outputs go to `<output dir>/shard-I-of-N/`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<blindlink_party::Shard>,
    /// Run stage K of an exact cascade (e.g. `--stage 1`, overriding the config's `[shard]
    /// stage`; needs `--shard`): match key K only, over the records the earlier stages left
    /// unlinked, sharded by key K; the outputs go to `<output dir>/stage-K/shard-I-of-N/`.
    #[arg(long, value_name = "K")]
    pub stage: Option<u64>,
    /// Read this CSV file instead of the config's `[input] csv` (e.g. the file `blindlink
    /// split` wrote for this shard: `<stem>.shard-I-of-N.csv`, or
    /// `<stem>.stage-K.shard-I-of-N.csv` for stage K), so that one config serves every shard;
    /// refused when the config's input is a PostgreSQL query.
    #[arg(long, value_name = "CSV")]
    pub input: Option<std::path::PathBuf>,
    /// The merged output directory of stages 0 to K-1 (`blindlink merge` of their shards),
    /// which stage K > 0 takes its records from (overriding `[shard] previous`).
    #[arg(long, value_name = "DIR")]
    pub previous: Option<std::path::PathBuf>,
}

/// `--shard I/N`.
fn parse_shard(text: &str) -> Result<blindlink_party::Shard, String> {
    blindlink_party::Shard::parse(text)
}

impl PartyArgs {
    /// Loads the config for `command` and checks that it and the command line agree on the
    /// transport.
    ///
    /// # Errors
    /// An unreadable or invalid config, or plaintext asked for on only one of the two.
    pub fn load_config(&self, command: PartyCommand) -> anyhow::Result<PartyConfig> {
        let mut config = PartyConfig::load(&self.config, command)?;
        config.confirm_transport(self.insecure_loopback)?;
        if let Some(path) = &self.input {
            override_input(&mut config, path)?;
        }
        if let Some(shard) = self.shard {
            config.shard = Some(shard);
        }
        if let Some(round) = self.stage {
            let stage = blindlink_party::CascadeStage::new(round, config.match_keys.len())
                .map_err(|why| {
                    anyhow::anyhow!("{}: --stage {round}: {why}", config.source.display())
                })?;
            config.stage = Some(stage);
        }
        if let Some(previous) = &self.previous {
            config.previous = Some(previous.clone());
        }
        blindlink_party::check_stage(&config)?;
        if let Some(shard) = config.shard {
            blindlink_party::check_shardable(&config, shard)?;
            if let Some(stage) = config.stage {
                config.output_dir = config.output_dir.join(stage.dir_name());
            }
            // Shards of another count in the same directory could never be merged with these.
            if let Ok(entries) = std::fs::read_dir(&config.output_dir) {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                // The first one in name order, whatever order the file system lists.
                names.sort();
                blindlink_party::check_output_entries(names.iter().map(String::as_str), shard)
                    .map_err(|why| {
                        anyhow::anyhow!("{}: output.dir: {why}", config.source.display())
                    })?;
            }
            config.output_dir = config.output_dir.join(shard.dir_name());
        }
        Ok(config)
    }
}

/// The shard whose file `blindlink split --shards N` names `name` (`<stem>.shard-I-of-N.csv`),
/// if it is one (a stage's split, `<stem>.stage-K.shard-I-of-N.csv`, is not).
#[must_use]
pub fn split_shard_of(name: &str) -> Option<blindlink_party::Shard> {
    if stage::stage_split_of(name).is_some() {
        return None;
    }
    let (_, shard) = name.strip_suffix(".csv")?.rsplit_once('.')?;
    blindlink_party::Shard::from_dir_name(shard)
}

/// A run (not a later cascade stage) on a file `blindlink split` wrote must be that file's
/// shard, and every record in it must be in that shard: another shard's file would otherwise
/// link nothing, or a part of the records, without a word.
///
/// # Errors
/// The file is a shard's split and the run is unsharded or another shard, or it holds
/// records of other shards.
fn check_split_file(
    config: &PartyConfig,
    selection: Option<blindlink_party::shard::ShardSelection>,
) -> anyhow::Result<()> {
    let Some((path, of)) = config.input.csv().and_then(|path| {
        let name = path.file_name()?.to_string_lossy().into_owned();
        Some((path, split_shard_of(&name)?))
    }) else {
        return Ok(());
    };
    let shown = config.source.display();
    let file = path.display();
    let Some(shard) = config.shard else {
        anyhow::bail!(
            "{shown}: [input] csv {file} is the split for shard {of}, and this run has no shard \
             (give --shard {of})"
        );
    };
    if shard != of {
        anyhow::bail!(
            "{shown}: [input] csv {file} is the split for shard {of}, and this run is shard \
             {shard}"
        );
    }
    if let Some(selection) = selection.filter(|s| s.elsewhere > 0) {
        anyhow::bail!(
            "{shown}: [input] csv {file}: {} of its {} rows are records of other shards than \
             {shard}: the file is not this shard's split (blindlink split --shards {} writes \
             it)",
            selection.elsewhere,
            selection.total,
            shard.count()
        );
    }
    Ok(())
}

/// Replaces `config`'s CSV input with `path` (`--input`).
///
/// # Errors
/// The config's input is a PostgreSQL query: a file cannot stand for it.
pub fn override_input(config: &mut PartyConfig, path: &std::path::Path) -> anyhow::Result<()> {
    match &config.input {
        InputSource::Csv(_) => {
            config.input = InputSource::Csv(path.to_path_buf());
            Ok(())
        }
        InputSource::Postgres(_) => anyhow::bail!(
            "{}: --input {}: [input] is a postgres query, and --input replaces a csv input \
             only (give each shard's query its own WHERE clause in its own config, or export \
             the query to csv and name the file in [input] csv)",
            config.source.display(),
            path.display()
        ),
    }
}

/// The index among `config`'s match keys of fuzzy's `[shard] key`, in a sharded run (its
/// column is the only key a fuzzy shard computes and cuts its shards by).
#[must_use]
pub fn shard_key_index(config: &PartyConfig) -> Option<usize> {
    config.shard?;
    let name = config.shard_key.as_ref()?;
    config.match_keys.iter().position(|k| &k.name == name)
}

/// A party ready to link: its config, secret, schema and records.
pub struct LoadedParty {
    /// The config it was loaded from.
    pub config: PartyConfig,
    /// The linkage secret's bytes (for the handshake's key-check value).
    pub secret: Zeroizing<Vec<u8>>,
    /// The CLK schema.
    pub schema: SchemaDocument,
    /// The records.
    pub records: PartyRecords,
    /// How long reading and encoding took.
    pub load_time: Duration,
    /// A sharded run: how many of the records read are in this shard.
    pub shard_selection: Option<blindlink_party::shard::ShardSelection>,
}

impl std::fmt::Debug for LoadedParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedParty")
            .field("config", &self.config)
            .field("records", &self.records.ids.len())
            .finish_non_exhaustive()
    }
}

/// `config`'s schema and linkage key (the key file's bytes and the secret made of them); errors
/// name the config key that points at the file.
///
/// # Errors
/// An unreadable or invalid schema or key file.
pub fn read_schema_and_key(
    config: &PartyConfig,
) -> anyhow::Result<(SchemaDocument, Zeroizing<Vec<u8>>, LinkageSecret)> {
    let shown = config.source.display();
    let schema_text = std::fs::read_to_string(&config.schema).with_context(|| {
        format!(
            "{shown}: linkage.schema: cannot read {}",
            config.schema.display()
        )
    })?;
    let schema = SchemaDocument::parse(&schema_text)
        .with_context(|| format!("invalid schema {}", config.schema.display()))?;
    let secret = crate::commands::keygen::read_key_file(&config.key_file)
        .with_context(|| format!("{shown}: linkage.key_file"))?;
    let linkage_secret = LinkageSecret::from_bytes(secret.to_vec())
        .with_context(|| format!("key file {}", config.key_file.display()))?;
    Ok((schema, secret, linkage_secret))
}

/// Reads the schema, the key and the input (a CSV file or a PostgreSQL query) of `config`,
/// and encodes the records.
///
/// # Errors
/// An unreadable or invalid file, named with the config key that points at it.
pub fn load_party(config: PartyConfig) -> anyhow::Result<LoadedParty> {
    let started = Instant::now();
    blindlink_party::check_stage(&config)?;
    let round = config.stage.map_or(0, blindlink_party::CascadeStage::round);
    if round == 0 {
        // A split file of another shard is refused before it is read.
        check_split_file(&config, None)?;
    }
    let shown = config.source.display().to_string();
    let (schema, secret, linkage_secret) = read_schema_and_key(&config)?;
    let encoder = ClkEncoder::new(&schema, &linkage_secret)
        .with_context(|| format!("schema {}", config.schema.display()))?;
    let tokenizer = fields::field_tokenizer(config.mode, &schema, &linkage_secret, &config.schema)?;
    let shard = config.shard.map(|s| {
        (
            s,
            blindlink_party::ShardAssigner::for_round(&linkage_secret, s.count(), round),
        )
    });
    drop(linkage_secret);
    // validate compares field tokens only; fuzzy blocks on CLKs locally and compares tokens.
    let needs_clks = blindlink_party::uses_clks(config.mode);
    // A cascade stage links its own key only, and fuzzy sharded by `[shard] key` keeps only
    // that key (the one its shards are cut by): the other keys are not computed.
    let shard_key = shard_key_index(&config);
    let keys = match (config.stage, shard_key) {
        (Some(stage), _) => {
            let k = stage.round() as usize;
            config.match_keys.get(k..=k).unwrap_or(&config.match_keys)
        }
        (None, Some(k)) => &config.match_keys[k..=k],
        (None, None) => &config.match_keys[..],
    };
    let spec = blindlink_party::RecordsSpec {
        columns: config.input_columns(keys),
        schema: &schema,
        encoder: needs_clks.then_some(&encoder),
        tokenizer: tokenizer.as_ref(),
        options: input::InputOptions {
            invalid_rows: config.invalid_rows,
            era_dates: config.era_dates,
        },
        // Other shards' rows are dropped as they are read, before they are encoded, when the
        // shard is cut by the first key computed (round 0: the first match key, or fuzzy's
        // `[shard] key`, the only one computed); a later stage of a cascade selects after
        // reading (below).
        shard: shard
            .as_ref()
            .filter(|_| round == 0)
            .map(|(shard, assigner)| (*shard, assigner)),
        // Its name was checked above: this shard's file, which may hold no record.
        own_shard_file: round == 0
            && config
                .input
                .csv()
                .and_then(|path| path.file_name())
                .and_then(|name| split_shard_of(&name.to_string_lossy()))
                .is_some(),
    };
    let mut records = match &config.input {
        InputSource::Csv(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            input::read_csv_records(
                std::io::BufReader::new(file),
                blindlink_party::RecordSource::Csv(path.display().to_string()),
                spec,
            )?
        }
        InputSource::Postgres(pg) => postgres::read_postgres_records(pg, &shown, spec)?,
    };
    if let Some(stage) = config.stage {
        // A cascade stage links its own key only, over the records earlier stages left.
        blindlink_party::keep_stage_key(&mut records, stage);
        if let Some(previous) = &config.previous {
            let cascade: Vec<String> = config.match_keys.iter().map(|k| k.name.clone()).collect();
            let shard = shard.as_ref().map(|(shard, assigner)| (*shard, assigner));
            let carried =
                stage::carried_records(&config, &cascade, stage, previous, &records, shard)?;
            blindlink_party::retain_carried(&mut records, &carried);
        }
    }
    let shard_selection = match (records.shard.take(), shard) {
        // Dropped as read (the first match key, round 0).
        (Some(selection), _) => Some(selection),
        (None, Some((shard, assigner))) => Some(blindlink_party::retain_shard(
            &mut records,
            shard,
            &assigner,
        )),
        (None, None) => None,
    };
    if round == 0 {
        check_split_file(&config, shard_selection)?;
    }
    Ok(LoadedParty {
        config,
        secret,
        schema,
        records,
        load_time: started.elapsed(),
        shard_selection,
    })
}

/// The transport security the config asks for, with its PEM files read.
///
/// # Errors
/// A TLS file cannot be read.
pub fn transport_security(config: &PartyConfig) -> anyhow::Result<TransportSecurity> {
    match &config.tls {
        TlsFiles::InsecureLoopback => Ok(TransportSecurity::InsecureLoopback),
        TlsFiles::Mutual { ca, cert, key } => {
            let read = |what: &str, path: &std::path::Path| {
                std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "{}: tls.{what}: cannot read {}",
                        config.source.display(),
                        path.display()
                    )
                })
            };
            Ok(TransportSecurity::MutualTls(TlsCredentials {
                ca_pem: read("ca", ca)?,
                cert_pem: read("cert", cert)?,
                key_pem: Zeroizing::new(read("key", key)?),
            }))
        }
    }
}

/// A single-line progress message on stderr, unless quiet.
pub fn progress(quiet: bool, message: &str) {
    if !quiet {
        eprintln!("{message}");
    }
}

/// For a sharded run: which shard, and how many of the records read it holds.
pub fn shard_progress(quiet: bool, party: &LoadedParty) {
    if let (Some(shard), Some(selection)) = (party.config.shard, party.shard_selection) {
        let stage = party.config.stage.map_or_else(String::new, |s| {
            format!(
                "stage {} ({}), ",
                s.round(),
                party
                    .config
                    .match_keys
                    .get(s.round() as usize)
                    .map_or("", |k| k.name.as_str())
            )
        });
        progress(
            quiet,
            &format!(
                "{stage}shard {shard}: {} records of the input's {} rows; outputs in {}",
                selection.kept,
                selection.total,
                party.config.output_dir.display()
            ),
        );
    }
}

/// The socket address a command-line flag names (`host:port`, through the system resolver),
/// replacing one of `config`'s.
///
/// # Errors
/// It names none, or a non-loopback address under `tls.insecure_loopback`.
pub fn resolve_flag(
    flag: &str,
    text: &str,
    config: &PartyConfig,
) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let address = text
        .to_socket_addrs()
        .with_context(|| format!("{flag}: cannot resolve '{text}'"))?
        .next()
        .with_context(|| format!("{flag}: '{text}' resolves to no address"))?;
    if config.tls == TlsFiles::InsecureLoopback && !address.ip().is_loopback() {
        anyhow::bail!(
            "{flag}: {address} is not a loopback address, and {} sets tls.insecure_loopback, \
             which allows plaintext only on loopback",
            config.source.display()
        );
    }
    Ok(address)
}
