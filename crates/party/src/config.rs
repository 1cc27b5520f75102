//! The party configuration file (`registry.toml`, `insurer.toml`): one TOML document per party
//! naming its network address, TLS files, allow-list, schema, linkage key, input CSV with its
//! column mapping, mode, thresholds and output directory. Relative paths are relative to the
//! config file's directory, so a directory of configs, keys and data can be moved as a whole.
//!
//! ```toml
//! name = "registry"                 # this party (its certificate's DNS name)
//! mode = "validate"                 # cardinality | exact | validate | fuzzy | clk-exchange
//!
//! [server]                          # `blindlink serve` only
//! listen = "127.0.0.1:7443"
//! allowed_peers = ["insurer"]       # peer certificate DNS names that may link
//! max_sessions = 1                  # sessions to serve before exiting (0 = until Ctrl-C)
//!
//! [peer]                            # `blindlink link` only
//! address = "127.0.0.1:7443"
//! name = "registry"                 # the DNS name the server's certificate must carry
//!
//! [tls]
//! ca = "certs/ca.pem"
//! cert = "certs/registry.pem"
//! key = "certs/registry.key"
//! insecure_loopback = false         # plaintext on loopback only, for experiments; also needs `--insecure-loopback`
//!
//! [linkage]
//! schema = "schema.toml"            # the CLK schema (quasi-identifier columns)
//! key_file = "linkage.key"          # the shared linkage secret (blindlink keygen)
//! validate_threshold = 0.5          # validate: a match probability below this flags a suspected wrong person
//! fuzzy_threshold = 0.8             # fuzzy, clk-exchange: Dice needed to link
//! fuzzy_bands = 1                   # fuzzy: MinHash bands per field pair (more: higher recall, more PSI work)
//! fuzzy_minima_per_band = 8         # fuzzy: minima per band (more: fewer, closer candidates)
//! fuzzy_blocking = "field-pairs"    # fuzzy: field-pairs | field-tokens | clk-bits
//! fuzzy_common_share = 1.0          # fuzzy, field-tokens: leave out tokens more records hold
//! fuzzy_max_pairs = 2               # fuzzy: most pairs per candidate record
//! fuzzy_exact_stage = true          # fuzzy: link equal whole records without comparing them
//! [[linkage.validate_field]]        # optional, per field: fuzzy's weights (unlisted: weight 1, veto 1
//!                                   # for `exact` token fields; blindlink_party::scoring); validate scores
//!                                   # with the schema's comparison levels and only warns about these
//! name = "date_of_birth"
//! weight = 2.0
//! veto_below = 0.9                  # flag whenever this field's Dice is below
//! reveal_decodable_encodings = false # clk-exchange only: true sends record-level CLKs, which a
//!                                   # peer holding the key can decode; both sides must say true
//!
//! [input]
//! csv = "data/registry.csv"         # or postgres = { url = ..., table = ... }: see crate::source
//! id_column = "record_id"
//! schema_columns = { surname_kana = "kana_surname" }   # optional: schema column -> CSV column
//! combined_columns = { name_kana = ["surname_kana", "given_name_kana"] }  # joined by a space
//! invalid_rows = "abort"            # abort (default): the first bad row stops the run, naming
//!                                   # file, line, field and reason; reject: bad rows are withheld
//!                                   # from the session and listed in <output dir>/rejects.csv
//! era_dates = "strict"              # strict (default): 平成32年1月1日 (an era date after the era
//!                                   # ended) is a bad value; lenient: read as the Gregorian date it
//!                                   # denotes (2020-01-01), counted in report.txt
//!
//! [[input.match_key]]               # the cascade, in order
//! name = "my-number"
//! columns = [{ column = "my_number", normalise = ["my-number"] }]
//!
//! [output]
//! dir = "out/registry"
//! transcript = false                # true: also write transcript.bin (every protocol message)
//!
//! [shard]                           # optional: run shard `index` of `count` (0 <= index < count);
//! index = 0                         # `--shard I/N` overrides it; outputs go to
//! count = 4                         # <output dir>/shard-I-of-N (blindlink_party::shard)
//! stage = 1                         # optional, exact cascade: run match key `stage` only (`--stage`),
//! previous = "out/merged-0"         # over the records the merged stages 0..stage left unlinked
//!                                   # (`--previous`; stage > 0 only); outputs go to
//!                                   # <output dir>/stage-K/shard-I-of-N
//! key = "prefecture"                # fuzzy only: shard by this [[input.match_key]], a coarse
//!                                   # blocking key (a true pair whose values differ is lost)
//!
//! [limits]                          # optional: how long this side lets a session run
//! session_minutes = 60              # the whole session (1 to 10080; both sides': the shorter wins)
//! idle_seconds = 600                # one wait for the peer's next message (1 to 86400)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use blindlink_protocol::{
    BlockingInput, MAX_FUZZY_PAIRS, MAX_MINHASH_BANDS, MAX_MINHASH_ROWS, Mode,
};
use serde::Deserialize;

use crate::PartyError;
use crate::source::InputSource;

/// Which command reads the config: it decides which sections are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyCommand {
    /// `blindlink serve`: needs `[server]`.
    Serve,
    /// `blindlink link`: needs `[peer]`.
    Link,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    mode: String,
    server: Option<RawServer>,
    peer: Option<RawPeer>,
    tls: RawTls,
    linkage: RawLinkage,
    input: RawInput,
    output: RawOutput,
    shard: Option<RawShard>,
    limits: Option<RawLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    session_minutes: Option<i64>,
    idle_seconds: Option<i64>,
}

/// `[limits]`: the longest a session may run, and the longest one wait for the peer. A
/// national-scale `validate` runs for hours, longer than the transport's defaults (60 min and
/// 10 min), and a loaded machine stretches every phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLimits {
    /// `session_minutes`: the whole session (`None`: the transport's default).
    pub session_deadline: Option<std::time::Duration>,
    /// `idle_seconds`: one wait for the peer's next message (`None`: the transport's default).
    pub idle_timeout: Option<std::time::Duration>,
}

/// The most `[limits] session_minutes` may be: a week.
pub const MAX_SESSION_MINUTES: i64 = 7 * 24 * 60;
/// The most `[limits] idle_seconds` may be: a day.
pub const MAX_IDLE_SECONDS: i64 = 24 * 60 * 60;

fn parse_limits(raw: Option<&RawLimits>, shown: &str) -> Result<SessionLimits, PartyError> {
    let Some(raw) = raw else {
        return Ok(SessionLimits::default());
    };
    let check = |key: &str, value: Option<i64>, max: i64, unit: u64| match value {
        None => Ok(None),
        Some(v) if (1..=max).contains(&v) => Ok(Some(std::time::Duration::from_secs(
            v.unsigned_abs() * unit,
        ))),
        Some(v) => Err(PartyError::config(
            shown,
            key,
            format!("{v} is out of range (1 to {max})"),
        )),
    };
    Ok(SessionLimits {
        session_deadline: check(
            "limits.session_minutes",
            raw.session_minutes,
            MAX_SESSION_MINUTES,
            60,
        )?,
        idle_timeout: check("limits.idle_seconds", raw.idle_seconds, MAX_IDLE_SECONDS, 1)?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShard {
    index: i64,
    count: i64,
    stage: Option<i64>,
    previous: Option<PathBuf>,
    key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    allowed_peers: Vec<String>,
    #[serde(default = "one")]
    max_sessions: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    address: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    #[serde(default)]
    insecure_loopback: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinkage {
    schema: PathBuf,
    key_file: PathBuf,
    validate_threshold: Option<f64>,
    fuzzy_threshold: Option<f64>,
    fuzzy_bands: Option<usize>,
    fuzzy_minima_per_band: Option<usize>,
    fuzzy_blocking: Option<String>,
    fuzzy_common_share: Option<f64>,
    fuzzy_max_pairs: Option<usize>,
    fuzzy_exact_stage: Option<bool>,
    #[serde(default, rename = "validate_field")]
    validate_fields: Vec<RawValidateField>,
    #[serde(default)]
    reveal_decodable_encodings: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidateField {
    name: String,
    weight: f64,
    veto_below: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    csv: Option<PathBuf>,
    postgres: Option<crate::source::PostgresSpec>,
    id_column: String,
    #[serde(default)]
    schema_columns: BTreeMap<String, String>,
    #[serde(default)]
    combined_columns: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "match_key")]
    match_keys: Vec<RawMatchKey>,
    invalid_rows: Option<String>,
    era_dates: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatchKey {
    name: String,
    columns: Vec<RawKeyColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyColumn {
    column: String,
    #[serde(default)]
    normalise: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    dir: PathBuf,
    #[serde(default)]
    transcript: bool,
}

/// What a party does with an input row that cannot be used (a value its normalisation rejects,
/// a required field missing, a column count that does not match the header): `[input]
/// invalid_rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidRows {
    /// The first bad row stops the run before any connection, naming file, line, field and
    /// reason (the default: a linkage never silently runs on fewer records than the file holds).
    #[default]
    Abort,
    /// Bad rows are withheld from the session (the peer never sees them, not even in a count)
    /// and written with file, line, field and reason to `rejects.csv` in the output directory;
    /// `report.txt` and the ledger count them.
    Reject,
}

impl InvalidRows {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Abort => "abort",
            Self::Reject => "reject",
        }
    }
}

/// How a Japanese era date outside its era is read: `[input] era_dates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EraDates {
    /// Rejected as a bad value (`平成32年1月1日`: 平成 ended on 2019-04-30), the default and the
    /// behaviour of the normalisation steps `date`, `date-dmy` and `date-mdy` on their own.
    #[default]
    Strict,
    /// Read as the Gregorian date it denotes (`平成32年1月1日` -> 2020-01-01, `令和元年4月1日`
    /// -> 2019-04-01), as pre-printed forms and late-updated systems write them; how many were
    /// read so is counted in `report.txt`.
    Lenient,
}

impl EraDates {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Lenient => "lenient",
        }
    }
}

/// TLS material, or plaintext on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFiles {
    /// Mutual TLS with these PEM files.
    Mutual {
        /// The CA both parties trust.
        ca: PathBuf,
        /// This party's certificate.
        cert: PathBuf,
        /// This party's private key.
        key: PathBuf,
    },
    /// Plaintext, loopback addresses only.
    InsecureLoopback,
}

/// One column of a match key and its normalisation steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    /// CSV column.
    pub column: String,
    /// Normalisation step names (see `blindlink_encoding::normalise`).
    pub normalise: Vec<String>,
}

/// One step of the match-key cascade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchKeySpec {
    /// Name both parties use for the step (e.g. `my-number`, `name-dob-sex`).
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<KeyColumn>,
}

/// A validated party configuration with absolute paths.
#[derive(Debug, Clone, PartialEq)]
pub struct PartyConfig {
    /// The file it came from, for error messages.
    pub source: PathBuf,
    /// This party's name.
    pub name: String,
    /// The linkage mode.
    pub mode: Mode,
    /// `serve`: address to listen on.
    pub listen: Option<SocketAddr>,
    /// `serve`: peers allowed to link.
    pub allowed_peers: Vec<String>,
    /// `serve`: sessions to serve before exiting (0: until interrupted).
    pub max_sessions: u64,
    /// `link`: the server's address and certificate name.
    pub peer: Option<(SocketAddr, String)>,
    /// `[limits]`: how long this side lets a session run.
    pub limits: SessionLimits,
    /// TLS files or plaintext loopback.
    pub tls: TlsFiles,
    /// The CLK schema.
    pub schema: PathBuf,
    /// The linkage key file.
    pub key_file: PathBuf,
    /// `validate`: a match probability below this flags a suspected wrong-person link.
    pub validate_threshold: Option<f64>,
    /// `fuzzy`, `clk-exchange`: Dice needed to link.
    pub fuzzy_threshold: Option<f64>,
    /// `fuzzy`: MinHash bands of the private blocking.
    pub fuzzy_bands: Option<usize>,
    /// `fuzzy`: minima per MinHash band.
    pub fuzzy_minima_per_band: Option<usize>,
    /// `fuzzy`: what the MinHash blocking is taken over.
    pub fuzzy_blocking: Option<BlockingInput>,
    /// `fuzzy` over field tokens: the share of records above which a token is left out.
    pub fuzzy_common_share: Option<f64>,
    /// `fuzzy`: most pairs per candidate record.
    pub fuzzy_max_pairs: Option<usize>,
    /// `fuzzy`: the exact stage.
    pub fuzzy_exact_stage: Option<bool>,
    /// The input: a CSV file or a PostgreSQL query (`[input] csv` or `postgres`).
    pub input: InputSource,
    /// The column holding each record's local id.
    pub id_column: String,
    /// Schema column -> CSV column, where they differ.
    pub schema_columns: BTreeMap<String, String>,
    /// Schema column -> CSV columns whose values are joined with a space to make it.
    pub combined_columns: BTreeMap<String, Vec<String>>,
    /// `validate`, `fuzzy`: weights and vetoes of the per-field comparison (a field not listed
    /// gets [`default_scoring`](crate::default_scoring)).
    pub validate_fields: Vec<blindlink_protocol::FieldScoring>,
    /// The match-key cascade.
    pub match_keys: Vec<MatchKeySpec>,
    /// Where `links.csv`, `ledger.json` and `report.txt` go.
    pub output_dir: PathBuf,
    /// `[linkage] reveal_decodable_encodings`: this party agrees to send record-level CLKs
    /// (`clk-exchange`), which a peer holding the linkage key can decode. Default false.
    pub reveal_decodable_encodings: bool,
    /// `[output] transcript`: also write `transcript.bin` beside `ledger.json`. Default false.
    pub transcript: bool,
    /// `[input] invalid_rows`: abort on the first bad row (default) or withhold and list them.
    pub invalid_rows: InvalidRows,
    /// `[input] era_dates`: strict (default) or lenient reading of era dates outside their era.
    pub era_dates: EraDates,
    /// `[shard] index/count`: run one shard of a sharded linkage (`None`: unsharded).
    pub shard: Option<crate::Shard>,
    /// `[shard] stage`: run one stage of an exact cascade (`None`: every match key in one
    /// session); see [`crate::shard`].
    pub stage: Option<crate::CascadeStage>,
    /// `[shard] previous`: the merged output directory of the stages before [`Self::stage`].
    pub previous: Option<PathBuf>,
    /// `[shard] key`: `fuzzy` only, the `[[input.match_key]]` that shards it (a coarse
    /// blocking key; see [`crate::shard`]).
    pub shard_key: Option<String>,
}

impl PartyConfig {
    /// The input columns of this config, with `match_keys` (all of [`PartyConfig::match_keys`],
    /// or the keys from a cascade stage's on) as the keys to compute.
    #[must_use]
    pub fn input_columns<'a>(&'a self, match_keys: &'a [MatchKeySpec]) -> crate::InputColumns<'a> {
        crate::InputColumns {
            id_column: &self.id_column,
            match_keys,
            schema_columns: &self.schema_columns,
            combined_columns: &self.combined_columns,
        }
    }

    /// Parses config `text` that came from `path` (named in errors and used to resolve
    /// relative paths; nothing is read from it) for `command`. Addresses are resolved and party
    /// names checked by `host`, which the caller provides: resolving a host name is I/O, and
    /// which names a certificate may carry is the transport's rule.
    ///
    /// # Errors
    /// Not valid TOML, an unknown or missing key, or a value that makes no sense; the message
    /// names the file and the key (and the line, for TOML errors).
    ///
    /// # Example
    /// ```
    /// use std::path::Path;
    /// use blindlink_party::{LiteralAddresses, PartyCommand, PartyConfig};
    /// let text = "name = \"registry\"\nmode = \"exact\"\n[server]\nlisten = \"127.0.0.1:7443\"\n\
    ///     allowed_peers = [\"insurer\"]\n[tls]\ninsecure_loopback = true\n\
    ///     [linkage]\nschema = \"schema.toml\"\nkey_file = \"linkage.key\"\n\
    ///     [input]\ncsv = \"registry.csv\"\nid_column = \"id\"\n\
    ///     [[input.match_key]]\nname = \"id\"\ncolumns = [{ column = \"number\" }]\n\
    ///     [output]\ndir = \"out\"\n";
    /// let config = PartyConfig::parse(text, Path::new("peers/registry.toml"),
    ///     PartyCommand::Serve, &LiteralAddresses).unwrap();
    /// assert_eq!(config.input.csv(), Some(Path::new("peers/registry.csv")));
    /// let bad = text.replace("exact", "exakt");
    /// let err = PartyConfig::parse(&bad, Path::new("peers/registry.toml"),
    ///     PartyCommand::Serve, &LiteralAddresses).unwrap_err();
    /// assert_eq!(err.to_string(), "peers/registry.toml: mode: unknown mode 'exakt' \
    ///     (expected cardinality, exact, validate, fuzzy or clk-exchange)");
    /// ```
    pub fn parse(
        text: &str,
        path: &Path,
        command: PartyCommand,
        host: &dyn ConfigHost,
    ) -> Result<Self, PartyError> {
        let shown = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message spans several lines (a source excerpt); keep the first and the
            // location it names.
            let message = e.message().trim_end_matches('.').to_owned();
            match e.span().map(|span| line_of(text, span.start)) {
                Some(line) => PartyError::Syntax {
                    file: shown.clone(),
                    line,
                    message,
                },
                None => PartyError::whole(&shown, message),
            }
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let bad = |key: &str, why: String| PartyError::config(&shown, key, why);

        host.check_party_name(&raw.name)
            .map_err(|why| bad("name", why))?;
        let mode: Mode = raw.mode.parse().map_err(|_| {
            bad(
                "mode",
                format!(
                    "unknown mode '{}' (expected cardinality, exact, validate, fuzzy or clk-exchange)",
                    raw.mode
                ),
            )
        })?;

        let (listen, allowed_peers, max_sessions) = match (command, raw.server) {
            (PartyCommand::Serve, None) => {
                return Err(PartyError::whole(
                    &shown,
                    "missing [server] section (listen, allowed_peers), which `serve` needs",
                ));
            }
            (PartyCommand::Serve, Some(server)) => {
                let listen = host
                    .resolve(&server.listen)
                    .map_err(|why| bad("server.listen", why))?;
                if server.allowed_peers.is_empty() && !raw.tls.insecure_loopback {
                    return Err(bad(
                        "server.allowed_peers",
                        "is empty, so no peer could link".to_owned(),
                    ));
                }
                for peer in &server.allowed_peers {
                    host.check_party_name(peer)
                        .map_err(|why| bad("server.allowed_peers", why))?;
                }
                (Some(listen), server.allowed_peers, server.max_sessions)
            }
            (PartyCommand::Link, _) => (None, Vec::new(), 1),
        };
        let peer = match (command, raw.peer) {
            (PartyCommand::Link, None) => {
                return Err(PartyError::whole(
                    &shown,
                    "missing [peer] section (address, name), which `link` needs",
                ));
            }
            (PartyCommand::Link, Some(peer)) => {
                let address = host
                    .resolve(&peer.address)
                    .map_err(|why| bad("peer.address", why))?;
                host.check_party_name(&peer.name)
                    .map_err(|why| bad("peer.name", why))?;
                Some((address, peer.name))
            }
            (PartyCommand::Serve, _) => None,
        };

        let tls = match (
            raw.tls.insecure_loopback,
            raw.tls.ca,
            raw.tls.cert,
            raw.tls.key,
        ) {
            (true, None, None, None) => TlsFiles::InsecureLoopback,
            (true, ..) => {
                return Err(bad(
                    "tls.insecure_loopback",
                    "is true but ca, cert or key is also set; choose one".to_owned(),
                ));
            }
            (false, Some(ca), Some(cert), Some(key)) => TlsFiles::Mutual {
                ca: resolve(&ca),
                cert: resolve(&cert),
                key: resolve(&key),
            },
            (false, ca, cert, _) => {
                let missing = if ca.is_none() {
                    "ca"
                } else if cert.is_none() {
                    "cert"
                } else {
                    "key"
                };
                return Err(bad(
                    &format!("tls.{missing}"),
                    "is missing (mutual TLS needs ca, cert and key; plaintext needs \
                     insecure_loopback = true)"
                        .to_owned(),
                ));
            }
        };
        if tls == TlsFiles::InsecureLoopback {
            for (key, address) in [
                ("server.listen", listen),
                ("peer.address", peer.as_ref().map(|p| p.0)),
            ] {
                if let Some(address) = address
                    && !address.ip().is_loopback()
                {
                    return Err(bad(
                        key,
                        format!(
                            "{address} is not a loopback address, and insecure_loopback allows \
                             plaintext only on loopback"
                        ),
                    ));
                }
            }
        }

        for (key, value) in [
            ("linkage.validate_threshold", raw.linkage.validate_threshold),
            ("linkage.fuzzy_threshold", raw.linkage.fuzzy_threshold),
            ("linkage.fuzzy_common_share", raw.linkage.fuzzy_common_share),
        ] {
            if let Some(v) = value
                && !(0.0..=1.0).contains(&v)
            {
                return Err(bad(key, format!("{v} is not between 0 and 1")));
            }
        }

        for (key, value, max) in [
            (
                "linkage.fuzzy_bands",
                raw.linkage.fuzzy_bands,
                MAX_MINHASH_BANDS,
            ),
            (
                "linkage.fuzzy_minima_per_band",
                raw.linkage.fuzzy_minima_per_band,
                MAX_MINHASH_ROWS,
            ),
            (
                "linkage.fuzzy_max_pairs",
                raw.linkage.fuzzy_max_pairs,
                MAX_FUZZY_PAIRS,
            ),
        ] {
            if let Some(v) = value
                && !(1..=max).contains(&v)
            {
                return Err(bad(key, format!("{v} is not between 1 and {max}")));
            }
        }

        let fuzzy_blocking = match raw.linkage.fuzzy_blocking.as_deref() {
            None => None,
            Some(name) => Some(BlockingInput::from_name(name).ok_or_else(|| {
                bad(
                    "linkage.fuzzy_blocking",
                    format!(
                        "unknown blocking '{name}' (expected field-pairs, field-tokens or \
                         clk-bits)"
                    ),
                )
            })?),
        };

        let mut validate_fields = Vec::with_capacity(raw.linkage.validate_fields.len());
        for (i, field) in raw.linkage.validate_fields.into_iter().enumerate() {
            let at = format!("linkage.validate_field[{i}]");
            if !(field.weight.is_finite() && field.weight >= 0.0) {
                return Err(bad(
                    &format!("{at}.weight"),
                    format!("{} is not a weight (a number >= 0)", field.weight),
                ));
            }
            if let Some(v) = field.veto_below
                && !(0.0..=1.0).contains(&v)
            {
                return Err(bad(
                    &format!("{at}.veto_below"),
                    format!("{v} is not between 0 and 1"),
                ));
            }
            validate_fields.push(blindlink_protocol::FieldScoring {
                name: field.name,
                weight: field.weight,
                veto_below: field.veto_below,
            });
        }
        for (name, columns) in &raw.input.combined_columns {
            if columns.is_empty() {
                return Err(bad(
                    &format!("input.combined_columns.{name}"),
                    "lists no columns".to_owned(),
                ));
            }
        }
        if raw.input.id_column.is_empty() {
            return Err(bad("input.id_column", "is empty".to_owned()));
        }
        let mut match_keys = Vec::with_capacity(raw.input.match_keys.len());
        for (i, key) in raw.input.match_keys.into_iter().enumerate() {
            let at = format!("input.match_key[{i}]");
            if key.name.is_empty() {
                return Err(bad(&format!("{at}.name"), "is empty".to_owned()));
            }
            if match_keys.iter().any(|k: &MatchKeySpec| k.name == key.name) {
                return Err(bad(
                    &format!("{at}.name"),
                    format!("'{}' is used by an earlier match key", key.name),
                ));
            }
            if key.columns.is_empty() {
                return Err(bad(
                    &format!("{at} '{}'.columns", key.name),
                    "is empty".to_owned(),
                ));
            }
            let mut columns = Vec::with_capacity(key.columns.len());
            for (j, column) in key.columns.into_iter().enumerate() {
                blindlink_encoding::normalise::Pipeline::parse(&column.normalise).map_err(|e| {
                    bad(
                        &format!("{at} '{}'.columns[{j}].normalise", key.name),
                        e.to_string(),
                    )
                })?;
                columns.push(KeyColumn {
                    column: column.column,
                    normalise: column.normalise,
                });
            }
            match_keys.push(MatchKeySpec {
                name: key.name,
                columns,
            });
        }
        let input = crate::source::input_source(
            &shown,
            raw.input.csv.as_deref(),
            raw.input.postgres,
            resolve,
        )?;
        let invalid_rows = match raw.input.invalid_rows.as_deref() {
            None | Some("abort") => InvalidRows::Abort,
            Some("reject") => InvalidRows::Reject,
            Some(other) => {
                return Err(bad(
                    "input.invalid_rows",
                    format!("unknown value '{other}' (expected abort or reject)"),
                ));
            }
        };
        let era_dates = match raw.input.era_dates.as_deref() {
            None | Some("strict") => EraDates::Strict,
            Some("lenient") => EraDates::Lenient,
            Some(other) => {
                return Err(bad(
                    "input.era_dates",
                    format!("unknown value '{other}' (expected strict or lenient)"),
                ));
            }
        };
        if raw.linkage.reveal_decodable_encodings && mode != Mode::ClkExchange {
            return Err(bad(
                "linkage.reveal_decodable_encodings",
                format!(
                    "is true, but only mode clk-exchange sends decodable encodings (mode is {mode}); remove it"
                ),
            ));
        }
        if match_keys.is_empty() && mode.uses_match_keys() {
            return Err(bad(
                "input.match_key",
                format!("mode {mode} needs at least one [[input.match_key]]"),
            ));
        }

        let limits = parse_limits(raw.limits.as_ref(), &shown)?;
        let shard = raw
            .shard
            .as_ref()
            .map(|s| parse_shard(s, &shown))
            .transpose()?;
        let stage = match raw.shard.as_ref().and_then(|s| s.stage) {
            Some(stage) if stage < 0 => {
                return Err(bad("shard.stage", format!("{stage} is negative")));
            }
            Some(stage) => Some(
                crate::CascadeStage::new(stage.unsigned_abs(), match_keys.len())
                    .map_err(|why| bad("shard.stage", why))?,
            ),
            None => None,
        };
        let previous = raw
            .shard
            .as_ref()
            .and_then(|s| s.previous.as_deref())
            .map(resolve);
        let shard_key = raw.shard.as_ref().and_then(|s| s.key.clone());
        if let Some(key) = &shard_key
            && !match_keys.iter().any(|k| &k.name == key)
        {
            return Err(bad(
                "shard.key",
                format!(
                    "'{key}' is not one of the config's [[input.match_key]] names ({})",
                    match_keys
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }

        Ok(Self {
            source: path.to_path_buf(),
            name: raw.name,
            mode,
            listen,
            allowed_peers,
            max_sessions,
            peer,
            limits,
            tls,
            schema: resolve(&raw.linkage.schema),
            key_file: resolve(&raw.linkage.key_file),
            validate_threshold: raw.linkage.validate_threshold,
            fuzzy_threshold: raw.linkage.fuzzy_threshold,
            fuzzy_bands: raw.linkage.fuzzy_bands,
            fuzzy_minima_per_band: raw.linkage.fuzzy_minima_per_band,
            fuzzy_blocking,
            fuzzy_common_share: raw.linkage.fuzzy_common_share,
            fuzzy_max_pairs: raw.linkage.fuzzy_max_pairs,
            fuzzy_exact_stage: raw.linkage.fuzzy_exact_stage,
            input,
            id_column: raw.input.id_column,
            schema_columns: raw.input.schema_columns,
            combined_columns: raw.input.combined_columns,
            validate_fields,
            match_keys,
            output_dir: resolve(&raw.output.dir),
            reveal_decodable_encodings: raw.linkage.reveal_decodable_encodings,
            transcript: raw.output.transcript,
            invalid_rows,
            era_dates,
            shard,
            stage,
            previous,
            shard_key,
        })
    }
}

/// `[shard]`: the key named is the one at fault.
fn parse_shard(raw: &RawShard, shown: &str) -> Result<crate::Shard, PartyError> {
    for (key, value) in [("shard.index", raw.index), ("shard.count", raw.count)] {
        if value < 0 {
            return Err(PartyError::config(
                shown,
                key,
                format!("{value} is negative"),
            ));
        }
    }
    // Both are >= 0.
    let (index, count) = (raw.index.unsigned_abs(), raw.count.unsigned_abs());
    crate::Shard::new(index, count).map_err(|why| {
        let key = if count == 0 || count > u64::from(crate::shard::MAX_SHARDS) {
            "shard.count"
        } else {
            "shard.index"
        };
        PartyError::config(shown, key, why)
    })
}

/// What parsing a config needs from its surroundings: resolving an address (I/O, for a host
/// name) and the transport's rule for party names (they are certificate DNS names).
pub trait ConfigHost {
    /// The socket address `text` names.
    ///
    /// # Errors
    /// The reason it names none, as a message (`cannot resolve '{text}': ...`).
    fn resolve(&self, text: &str) -> Result<SocketAddr, String>;

    /// Checks that `name` can name a party.
    ///
    /// # Errors
    /// Why it cannot, as a message (`party name '{name}' ...`).
    fn check_party_name(&self, name: &str) -> Result<(), String>;
}

/// A [`ConfigHost`] without I/O: addresses must be literal (`127.0.0.1:7443`), and a party
/// name is any non-empty run of lowercase letters, digits, `-` and `.` (the transport's own
/// check is stricter). For tests and front ends that resolve names themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiteralAddresses;

impl ConfigHost for LiteralAddresses {
    fn resolve(&self, text: &str) -> Result<SocketAddr, String> {
        // The message std's resolver gives for a string that is no `host:port`.
        text.parse()
            .map_err(|_| format!("cannot resolve '{text}': invalid socket address"))
    }

    fn check_party_name(&self, name: &str) -> Result<(), String> {
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            Ok(())
        } else {
            Err(format!(
                "party name '{name}' may contain only lowercase letters, digits, '-' and '.'"
            ))
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl PartyConfig {
    /// Checks the transport against the command line: plaintext needs both
    /// `tls.insecure_loopback = true` in the config and `--insecure-loopback` on the command
    /// line, so neither a copied config nor a stray flag alone turns TLS off.
    ///
    /// # Errors
    /// The two disagree.
    pub fn confirm_transport(&self, insecure_loopback_flag: bool) -> Result<(), PartyError> {
        let shown = self.source.display().to_string();
        match (&self.tls, insecure_loopback_flag) {
            (TlsFiles::InsecureLoopback, false) => Err(PartyError::whole(
                &shown,
                "tls.insecure_loopback is true, which sends everything in plaintext: pass \
                 --insecure-loopback to confirm",
            )),
            (TlsFiles::InsecureLoopback, true) | (_, false) => Ok(()),
            (_, true) => Err(PartyError::Conflict(format!(
                "--insecure-loopback given, but {shown} configures mutual TLS (tls.ca, tls.cert, \
                 tls.key): set tls.insecure_loopback = true there instead of the TLS files"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVE: &str = r#"
name = "registry"
mode = "validate"
[server]
listen = "127.0.0.1:7443"
allowed_peers = ["insurer"]
[tls]
ca = "certs/ca.pem"
cert = "certs/registry.pem"
key = "certs/registry.key"
[linkage]
schema = "schema.toml"
key_file = "linkage.key"
validate_threshold = 0.75
[input]
csv = "data/registry.csv"
id_column = "record_id"
[[input.match_key]]
name = "my-number"
columns = [{ column = "my_number", normalise = ["my-number"] }]
[output]
dir = "out/registry"
"#;

    /// Applies `edit` to the good config and returns the outcome ("ok" or the error) if it is
    /// not `expected`.
    fn check(edit: (&str, &str), command: PartyCommand, expected: &str) -> Option<String> {
        let text = SERVE.replacen(edit.0, edit.1, 1);
        assert_ne!(text, SERVE, "edit {edit:?} changed nothing");
        let got = PartyConfig::parse(
            &text,
            Path::new("peers/registry.toml"),
            command,
            &LiteralAddresses,
        )
        .map(|_| "ok".to_owned())
        .unwrap_or_else(|e| format!("{e:#}"));
        (got != expected).then_some(got)
    }

    #[test]
    fn plaintext_needs_the_config_and_the_flag() {
        let path = Path::new("peers/registry.toml");
        let tls = PartyConfig::parse(SERVE, path, PartyCommand::Serve, &LiteralAddresses).unwrap();
        assert!(tls.confirm_transport(false).is_ok());
        assert_eq!(
            format!("{:#}", tls.confirm_transport(true).unwrap_err()),
            "--insecure-loopback given, but peers/registry.toml configures mutual TLS (tls.ca, tls.cert, tls.key): set tls.insecure_loopback = true there instead of the TLS files"
        );
        let text = SERVE.replacen(
            "ca = \"certs/ca.pem\"\ncert = \"certs/registry.pem\"\nkey = \"certs/registry.key\"",
            "insecure_loopback = true",
            1,
        );
        assert_ne!(text, SERVE);
        let plain =
            PartyConfig::parse(&text, path, PartyCommand::Serve, &LiteralAddresses).unwrap();
        assert!(plain.confirm_transport(true).is_ok());
        assert_eq!(
            format!("{:#}", plain.confirm_transport(false).unwrap_err()),
            "peers/registry.toml: tls.insecure_loopback is true, which sends everything in plaintext: pass --insecure-loopback to confirm"
        );
    }

    #[test]
    fn good_config_resolves_paths_next_to_the_file() {
        let config = PartyConfig::parse(
            SERVE,
            Path::new("peers/registry.toml"),
            PartyCommand::Serve,
            &LiteralAddresses,
        )
        .unwrap();
        assert_eq!(config.mode, Mode::Validate);
        assert_eq!(config.schema, Path::new("peers/schema.toml"));
        assert_eq!(config.output_dir, Path::new("peers/out/registry"));
        assert_eq!(config.listen, Some("127.0.0.1:7443".parse().unwrap()));
        assert_eq!(config.allowed_peers, ["insurer"]);
        assert_eq!(config.validate_threshold, Some(0.75));
        assert_eq!(config.match_keys[0].columns[0].normalise, ["my-number"]);
    }

    #[test]
    fn shard_section_is_checked() {
        use PartyCommand::Serve;
        let shard = |body: &str| {
            (
                "dir = \"out/registry\"",
                format!("dir = \"out/registry\"\n[shard]\n{body}"),
            )
        };
        let mut wrong = Vec::new();
        for (body, expected) in [
            ("index = 1\ncount = 3", "ok"),
            ("index = 0\ncount = 1", "ok"),
            (
                "index = 3\ncount = 3",
                "peers/registry.toml: shard.index: shard index 3 is not below the shard count 3 (shards are numbered 0 to 2)",
            ),
            (
                "index = 0\ncount = 0",
                "peers/registry.toml: shard.count: the shard count is 0; it must be at least 1",
            ),
            (
                "index = -1\ncount = 2",
                "peers/registry.toml: shard.index: -1 is negative",
            ),
            (
                "index = 0\ncount = 70000",
                "peers/registry.toml: shard.count: the shard count 70000 is over the limit of 65536",
            ),
            ("index = 0", "peers/registry.toml:23: missing field `count`"),
            (
                "index = \"0\"\ncount = 2",
                "peers/registry.toml:24: invalid type: string \"0\", expected i64",
            ),
            (
                "index = 0\ncount = 2\nof = 3",
                "peers/registry.toml:26: unknown field `of`, expected one of `index`, `count`, \
                 `stage`, `previous`, `key`",
            ),
            ("index = 0\ncount = 2\nstage = 0", "ok"),
            (
                "index = 0\ncount = 2\nstage = 1",
                "peers/registry.toml: shard.stage: stage 1 is past the cascade's last stage 0 \
                 (stages are numbered 0 to 0, one per match key)",
            ),
            (
                "index = 0\ncount = 2\nstage = -1",
                "peers/registry.toml: shard.stage: -1 is negative",
            ),
            ("index = 0\ncount = 2\nkey = \"my-number\"", "ok"),
            (
                "index = 0\ncount = 2\nkey = \"prefecture\"",
                "peers/registry.toml: shard.key: 'prefecture' is not one of the config's \
                 [[input.match_key]] names (my-number)",
            ),
        ] {
            let (from, to) = shard(body);
            wrong.extend(check((from, &to), Serve, expected));
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        let (from, to) = shard("index = 2\ncount = 5");
        let config = PartyConfig::parse(
            &SERVE.replacen(from, &to, 1),
            Path::new("peers/registry.toml"),
            Serve,
            &LiteralAddresses,
        )
        .unwrap();
        assert_eq!(config.shard, Some(crate::Shard::new(2, 5).unwrap()));
        assert_eq!((config.stage, config.previous), (None, None));
        let (from, to) = shard("index = 2\ncount = 5\nstage = 0\nprevious = \"m/0\"");
        let config = PartyConfig::parse(
            &SERVE.replacen(from, &to, 1),
            Path::new("peers/registry.toml"),
            Serve,
            &LiteralAddresses,
        )
        .unwrap();
        assert_eq!(config.stage, crate::CascadeStage::new(0, 1).ok());
        // Relative to the config; whether stage 0 may take one is check_stage's business.
        assert_eq!(config.previous.as_deref(), Some(Path::new("peers/m/0")));
        let mut config = config;
        assert_eq!(
            crate::check_stage(&config).unwrap_err().to_string(),
            "peers/registry.toml: stage 0: only mode exact runs a cascade in stages (mode is \
             validate)"
        );
        config.mode = Mode::Exact;
        assert_eq!(
            crate::check_stage(&config).unwrap_err().to_string(),
            "peers/registry.toml: stage 0 is the cascade's first stage and takes no previous \
             output, but peers/m/0 is given"
        );
        config.previous = None;
        assert!(crate::check_stage(&config).is_ok());
    }

    #[test]
    fn limits_set_the_session_deadline_and_idle_wait() {
        use std::time::Duration;
        let parse = |limits: &str| {
            PartyConfig::parse(
                &format!("{SERVE}[limits]\n{limits}\n"),
                Path::new("peers/registry.toml"),
                PartyCommand::Serve,
                &LiteralAddresses,
            )
            .map(|c| c.limits)
            .map_err(|e| format!("{e:#}"))
        };
        let none = SessionLimits::default();
        assert_eq!(
            PartyConfig::parse(
                SERVE,
                Path::new("p.toml"),
                PartyCommand::Serve,
                &LiteralAddresses
            )
            .unwrap()
            .limits,
            none
        );
        assert_eq!(parse(""), Ok(none));
        assert_eq!(
            parse("session_minutes = 240\nidle_seconds = 1800"),
            Ok(SessionLimits {
                session_deadline: Some(Duration::from_secs(240 * 60)),
                idle_timeout: Some(Duration::from_secs(1800)),
            })
        );
        assert_eq!(
            parse("session_minutes = 10080"),
            Ok(SessionLimits {
                session_deadline: Some(Duration::from_secs(7 * 24 * 3600)),
                idle_timeout: None,
            })
        );
        let mut wrong = Vec::new();
        for (limits, expected) in [
            (
                "session_minutes = 0",
                "peers/registry.toml: limits.session_minutes: 0 is out of range (1 to 10080)",
            ),
            (
                "session_minutes = 10081",
                "peers/registry.toml: limits.session_minutes: 10081 is out of range (1 to 10080)",
            ),
            (
                "idle_seconds = -5",
                "peers/registry.toml: limits.idle_seconds: -5 is out of range (1 to 86400)",
            ),
            (
                "idle_seconds = 86401",
                "peers/registry.toml: limits.idle_seconds: 86401 is out of range (1 to 86400)",
            ),
            (
                "session_hours = 2",
                "peers/registry.toml:24: unknown field `session_hours`, expected \
                 `session_minutes` or `idle_seconds`",
            ),
        ] {
            let got = parse(limits).map(|_| "ok".to_owned()).unwrap_or_else(|e| e);
            if got != expected {
                wrong.push((limits, got));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn bad_configs_name_the_file_and_key() {
        use PartyCommand::{Link, Serve};
        let mut wrong = Vec::new();
        wrong.extend(check(
            ("mode = \"validate\"", "mode = \"fuzzy-ish\""),
            Serve,
            "peers/registry.toml: mode: unknown mode 'fuzzy-ish' (expected cardinality, exact, validate, fuzzy or clk-exchange)",
        ));
        wrong.extend(check(
            ("[[input.match_key]]", "colour = 1\n[[input.match_key]]"),
            Serve,
            "peers/registry.toml:18: unknown field `colour`, expected one of `csv`, `postgres`, `id_column`, `schema_columns`, `combined_columns`, `match_key`, `invalid_rows`, `era_dates`",
        ));
        wrong.extend(check(
            ("dir = \"out/registry\"", ""),
            Serve,
            "peers/registry.toml:21: missing field `dir`",
        ));
        wrong.extend(check(
            ("[server]", "[peer]\naddress = \"x\"\nname = \"r\"\n[unused]"),
            Serve,
            "peers/registry.toml:7: unknown field `unused`, expected one of `name`, `mode`, `server`, `peer`, `tls`, `linkage`, `input`, `output`, `shard`, `limits`",
        ));
        wrong.extend(check(
            ("name = \"registry\"", "name = \"registry\" "),
            Link,
            "peers/registry.toml: missing [peer] section (address, name), which `link` needs",
        ));
        wrong.extend(check(
            ("\"127.0.0.1:7443\"", "\"127.0.0.1\""),
            Serve,
            "peers/registry.toml: server.listen: cannot resolve '127.0.0.1': invalid socket address",
        ));
        wrong.extend(check(
            ("allowed_peers = [\"insurer\"]", "allowed_peers = []"),
            Serve,
            "peers/registry.toml: server.allowed_peers: is empty, so no peer could link",
        ));
        wrong.extend(check(
            ("key = \"certs/registry.key\"", ""),
            Serve,
            "peers/registry.toml: tls.key: is missing (mutual TLS needs ca, cert and key; plaintext needs insecure_loopback = true)",
        ));
        wrong.extend(check(
            ("key = \"certs/registry.key\"", "key = \"k\"\ninsecure_loopback = true"),
            Serve,
            "peers/registry.toml: tls.insecure_loopback: is true but ca, cert or key is also set; choose one",
        ));
        wrong.extend(check(
            ("ca = \"certs/ca.pem\"\ncert = \"certs/registry.pem\"\nkey = \"certs/registry.key\"",
             "insecure_loopback = true"),
            Serve,
            "ok",
        ));
        wrong.extend(check(
            ("listen = \"127.0.0.1:7443\"\nallowed_peers = [\"insurer\"]\n[tls]\nca = \"certs/ca.pem\"\ncert = \"certs/registry.pem\"\nkey = \"certs/registry.key\"",
             "listen = \"0.0.0.0:7443\"\nallowed_peers = [\"insurer\"]\n[tls]\ninsecure_loopback = true"),
            Serve,
            "peers/registry.toml: server.listen: 0.0.0.0:7443 is not a loopback address, and insecure_loopback allows plaintext only on loopback",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "fuzzy_bands = 0"),
            Serve,
            "peers/registry.toml: linkage.fuzzy_bands: 0 is not between 1 and 64",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "fuzzy_minima_per_band = 17"),
            Serve,
            "peers/registry.toml: linkage.fuzzy_minima_per_band: 17 is not between 1 and 16",
        ));
        wrong.extend(check(
            (
                "validate_threshold = 0.75",
                "fuzzy_bands = 12\nfuzzy_minima_per_band = 8",
            ),
            Serve,
            "ok",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "fuzzy_blocking = \"bits\""),
            Serve,
            "peers/registry.toml: linkage.fuzzy_blocking: unknown blocking 'bits' (expected \
             field-pairs, field-tokens or clk-bits)",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "fuzzy_max_pairs = 0"),
            Serve,
            "peers/registry.toml: linkage.fuzzy_max_pairs: 0 is not between 1 and 256",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "fuzzy_common_share = -1"),
            Serve,
            "peers/registry.toml: linkage.fuzzy_common_share: -1 is not between 0 and 1",
        ));
        wrong.extend(check(
            (
                "validate_threshold = 0.75",
                "fuzzy_blocking = \"field-tokens\"\nfuzzy_common_share = 0.05\n\
                 fuzzy_max_pairs = 4\nfuzzy_exact_stage = false",
            ),
            Serve,
            "ok",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "validate_threshold = 1.5"),
            Serve,
            "peers/registry.toml: linkage.validate_threshold: 1.5 is not between 0 and 1",
        ));
        wrong.extend(check(
            ("normalise = [\"my-number\"]", "normalise = [\"my-numbr\"]"),
            Serve,
            "peers/registry.toml: input.match_key[0] 'my-number'.columns[0].normalise: unknown normalisation step 'my-numbr'",
        ));
        wrong.extend(check(
            ("[[input.match_key]]\nname = \"my-number\"\ncolumns = [{ column = \"my_number\", normalise = [\"my-number\"] }]", ""),
            Serve,
            "peers/registry.toml: input.match_key: mode validate needs at least one [[input.match_key]]",
        ));
        wrong.extend(check(
            ("name = \"registry\"", "name = \"Registry Office\""),
            Serve,
            "peers/registry.toml: name: party name 'Registry Office' may contain only lowercase letters, digits, '-' and '.'",
        ));
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn new_keys_default_off_and_parse() {
        let path = Path::new("peers/registry.toml");
        let config =
            PartyConfig::parse(SERVE, path, PartyCommand::Serve, &LiteralAddresses).unwrap();
        assert!(!config.reveal_decodable_encodings);
        assert!(!config.transcript);
        assert_eq!(config.invalid_rows, InvalidRows::Abort);
        assert_eq!(config.era_dates, EraDates::Strict);

        let text = SERVE
            .replacen("mode = \"validate\"", "mode = \"clk-exchange\"", 1)
            .replacen(
                "validate_threshold = 0.75",
                "reveal_decodable_encodings = true",
                1,
            )
            .replacen(
                "id_column = \"record_id\"",
                "id_column = \"record_id\"\ninvalid_rows = \"reject\"\nera_dates = \"lenient\"",
                1,
            )
            .replacen(
                "dir = \"out/registry\"",
                "dir = \"out/registry\"\ntranscript = true",
                1,
            );
        let config =
            PartyConfig::parse(&text, path, PartyCommand::Serve, &LiteralAddresses).unwrap();
        assert!(config.reveal_decodable_encodings);
        assert!(config.transcript);
        assert_eq!(config.invalid_rows, InvalidRows::Reject);
        assert_eq!(config.era_dates, EraDates::Lenient);
        assert_eq!(InvalidRows::Reject.as_str(), "reject");
        assert_eq!(EraDates::Lenient.as_str(), "lenient");
    }

    #[test]
    fn bad_new_keys_name_the_file_and_key() {
        use PartyCommand::Serve;
        let mut wrong = Vec::new();
        wrong.extend(check(
            ("id_column = \"record_id\"", "id_column = \"record_id\"\ninvalid_rows = \"skip\""),
            Serve,
            "peers/registry.toml: input.invalid_rows: unknown value 'skip' (expected abort or reject)",
        ));
        wrong.extend(check(
            (
                "id_column = \"record_id\"",
                "id_column = \"record_id\"\ninvalid_rows = \"abort\"",
            ),
            Serve,
            "ok",
        ));
        wrong.extend(check(
            ("id_column = \"record_id\"", "id_column = \"record_id\"\nera_dates = \"loose\""),
            Serve,
            "peers/registry.toml: input.era_dates: unknown value 'loose' (expected strict or lenient)",
        ));
        wrong.extend(check(
            (
                "id_column = \"record_id\"",
                "id_column = \"record_id\"\nera_dates = \"strict\"",
            ),
            Serve,
            "ok",
        ));
        wrong.extend(check(
            (
                "id_column = \"record_id\"",
                "id_column = \"record_id\"\nera_dates = true",
            ),
            Serve,
            "peers/registry.toml:18: invalid type: boolean `true`, expected a string",
        ));
        wrong.extend(check(
            ("validate_threshold = 0.75", "reveal_decodable_encodings = true"),
            Serve,
            "peers/registry.toml: linkage.reveal_decodable_encodings: is true, but only mode clk-exchange sends decodable encodings (mode is validate); remove it",
        ));
        wrong.extend(check(
            (
                "validate_threshold = 0.75",
                "reveal_decodable_encodings = \"yes\"",
            ),
            Serve,
            "peers/registry.toml:14: invalid type: string \"yes\", expected a boolean",
        ));
        wrong.extend(check(
            (
                "dir = \"out/registry\"",
                "dir = \"out/registry\"\ntranscript = 1",
            ),
            Serve,
            "peers/registry.toml:23: invalid type: integer `1`, expected a boolean",
        ));
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
