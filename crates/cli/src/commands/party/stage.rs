//! A stage `K > 0` of a sharded exact cascade reads the merged output of the stages before it
//! (`--previous DIR`, as `blindlink merge` writes it from the shards of stages `0..K`) and
//! keeps only the records those stages left unlinked (`status` `unmatched` or `ambiguous`:
//! the unsharded cascade gives an ambiguous record to the next round too).
//!
//! The previous output must be this party's, of this input: its ledger must be an exact
//! linkage in this party's role with this party's peer, list exactly the stages `0..K` with
//! this config's keys in that order, and count the rows this input has; its `links.csv` must
//! list every record of this input once, and nothing else. Anything else is refused before the
//! session, naming the file and what differs.
//!
//! Stage `K`'s input may also be the file `blindlink split --stage K --previous DIR` wrote
//! for its shard (`<stem>.stage-K.shard-I-of-N.csv`: the records stages `0..K` left unlinked
//! whose key `K` falls in shard `I`), so that the shard reads only its own records. The split
//! checked the whole input against `DIR` (rows counted, every record listed once); the shard
//! then checks that the file is the one of its stage and shard, and that each of its records
//! is carried and falls in its shard.
//!
//! Records are looked up by the first 16 bytes of the SHA-256 of their local id (a collision
//! among 10^9 ids has probability below 10^-20), so the lookup holds about 40 bytes per
//! record of the input for as long as the selection takes.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, bail};
use blindlink_party::{
    CascadeStage, InputSource, LEDGER_FILE, LINKS_FILE, PartyRecords, Shard, ShardAssigner,
};
use blindlink_protocol::{DisclosureLedger, Mode, Role};
use sha2::Digest as _;

use super::PartyConfig;

/// What the previous stages made of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Previously {
    /// Linked: not in this stage.
    Linked,
    /// Unmatched or ambiguous: carried into this stage.
    Carried,
    /// Seen in this input already (a second record with the id is an error).
    Seen,
}

fn id_digest(id: &str) -> u128 {
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(bytes)
}

/// The merged output of the stages before stage `K`, read and checked against this party's
/// config (its ledger's mode, role, peer, stages and keys), not yet against an input.
pub struct PreviousOutput {
    /// `config: --previous DIR`, before every message about it.
    prefix: String,
    links_path: std::path::PathBuf,
    /// What the previous stages made of each record, by [`id_digest`].
    states: HashMap<u128, Previously>,
    /// The input's rows and rejected rows, as the ledger counts them.
    rows_read: Option<u64>,
    rejected: u64,
}

impl std::fmt::Debug for PreviousOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousOutput")
            .field("links", &self.links_path)
            .field("records", &self.states.len())
            .finish_non_exhaustive()
    }
}

/// Reads the merged output `previous` of the stages before `stage` (see the module docs).
/// `keys` are the names of the config's whole cascade, in order; `rows`, the input's rows and
/// rejected rows, are checked against its ledger's before its links are read; `only` keeps
/// the states of those record ids alone (a shard's split file: its own few records, not the
/// whole input's).
///
/// # Errors
/// `previous` is not the merged output of stages `0..K` of this party's cascade, or cannot be
/// read.
pub fn read_previous(
    config: &PartyConfig,
    keys: &[String],
    stage: CascadeStage,
    previous: &Path,
    rows: Option<(u64, u64)>,
    only: Option<&HashSet<&str>>,
) -> anyhow::Result<PreviousOutput> {
    let shown = config.source.display().to_string();
    let prefix = format!("{shown}: --previous {}", previous.display());
    let ledger_path = previous.join(LEDGER_FILE);
    let text = std::fs::read_to_string(&ledger_path)
        .with_context(|| format!("{prefix}: cannot read {}", ledger_path.display()))?;
    let ledger = DisclosureLedger::from_json(&text)
        .with_context(|| format!("{prefix}: invalid ledger {}", ledger_path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{prefix}: invalid ledger {}", ledger_path.display()))?;
    if ledger.mode != Mode::Exact {
        bail!(
            "{prefix}: is the output of a {} linkage, not of an exact cascade's stages",
            ledger.mode
        );
    }
    let role = if config.peer.is_some() {
        Role::Initiator
    } else {
        Role::Responder
    };
    if ledger.role != role {
        bail!(
            "{prefix}: holds the outputs of the {}, and this party is the {role}",
            ledger.role
        );
    }
    let peer_ok = match &config.peer {
        Some((_, name)) => *name == ledger.peer,
        None => config.allowed_peers.contains(&ledger.peer),
    };
    if !peer_ok {
        let ours = match &config.peer {
            Some((_, name)) => name.clone(),
            None => config.allowed_peers.join(", "),
        };
        bail!(
            "{prefix}: is a linkage with {}, and this party links with {ours}",
            ledger.peer
        );
    }
    let Some(stages) = value.get("stages").and_then(serde_json::Value::as_array) else {
        bail!(
            "{prefix}: is not the merged output of cascade stages (its {LEDGER_FILE} lists no \
             stages; give the directory blindlink merge wrote from the stage-K/shard-I-of-N \
             directories)"
        );
    };
    let round = stage.round();
    let listed: Vec<(u64, String)> = stages
        .iter()
        .map(|s| {
            (
                s.get("stage")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(u64::MAX),
                s.get("key")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let numbers: Vec<u64> = listed.iter().map(|(n, _)| *n).collect();
    if numbers != (0..u64::from(round)).collect::<Vec<_>>() {
        bail!(
            "{prefix}: holds the merged output of stage {}, and stage {round} needs {}",
            numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if round == 1 {
                "stage 0's".to_owned()
            } else {
                format!("that of stages 0 to {}", round - 1)
            }
        );
    }
    for (n, key) in &listed {
        let expected = usize::try_from(*n)
            .ok()
            .and_then(|i| keys.get(i))
            .map_or("", String::as_str);
        if key != expected {
            bail!(
                "{prefix}: its stage {n} linked by key '{key}', and stage {n} of this config's \
                 cascade is '{expected}'"
            );
        }
    }
    let input = value.get("input");
    let count = |name: &str| {
        input
            .and_then(|i| i.get(name))
            .and_then(serde_json::Value::as_u64)
    };
    let (rows_read, rejected) = (count("rows_read"), count("rows_rejected").unwrap_or(0));
    if let Some((ours, our_rejected)) = rows {
        check_rows(&prefix, (rows_read, rejected), ours, our_rejected)?;
    }

    let links_path = previous.join(LINKS_FILE);
    let mut reader = csv::Reader::from_path(&links_path)
        .with_context(|| format!("{prefix}: cannot read {}", links_path.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("{prefix}: cannot read {}", links_path.display()))?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{prefix}: {} has no column {name}", links_path.display()))
    };
    let (id_column, status_column) = (column("local_record_id")?, column("status")?);
    let mut states: HashMap<u128, Previously> = HashMap::new();
    let mut record = csv::StringRecord::new();
    let mut line = 1u64;
    while reader
        .read_record(&mut record)
        .with_context(|| format!("{}:{}", links_path.display(), line + 1))?
    {
        line += 1;
        let at = || format!("{}:{line}", links_path.display());
        let id = record.get(id_column).unwrap_or_default();
        if only.is_some_and(|only| !only.contains(id)) {
            continue;
        }
        let state = match record.get(status_column).unwrap_or_default() {
            "linked" => Previously::Linked,
            "unmatched" | "ambiguous" => Previously::Carried,
            other => bail!(
                "{}: status '{other}' is not one of an exact cascade's (linked, ambiguous, \
                 unmatched)",
                at()
            ),
        };
        match states.entry(id_digest(id)) {
            Entry::Occupied(_) => bail!(
                "{}: record '{id}' is listed twice; a cascade stage needs unique record ids",
                at()
            ),
            Entry::Vacant(slot) => {
                slot.insert(state);
            }
        }
    }
    Ok(PreviousOutput {
        prefix,
        links_path,
        states,
        rows_read,
        rejected,
    })
}

impl PreviousOutput {
    /// How many records the previous output lists.
    #[must_use]
    pub fn records(&self) -> usize {
        self.states.len()
    }

    /// Marks record `id` of the input as seen: whether the previous stages left it unlinked.
    ///
    /// # Errors
    /// The id is not listed (`Unlisted`) or was seen before in this input (`Repeated`).
    pub fn take(&mut self, id: &str) -> Result<bool, Missing> {
        match self.states.get_mut(&id_digest(id)) {
            None => Err(Missing::Unlisted),
            Some(Previously::Seen) => Err(Missing::Repeated),
            Some(state) => {
                let carried = *state == Previously::Carried;
                *state = Previously::Seen;
                Ok(carried)
            }
        }
    }

    /// How many of the records listed were not seen in the input (after every record of it
    /// was taken).
    #[must_use]
    pub fn unseen(&self) -> usize {
        self.states
            .values()
            .filter(|s| **s != Previously::Seen)
            .count()
    }

    /// Checks the input's row counts against those the previous stages read.
    ///
    /// # Errors
    /// They differ: the previous output is another input's.
    pub fn check_rows(&self, rows_read: u64, rejected: u64) -> anyhow::Result<()> {
        check_rows(
            &self.prefix,
            (self.rows_read, self.rejected),
            rows_read,
            rejected,
        )
    }

    /// `config: --previous DIR`, for messages.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The previous output's `links.csv`.
    #[must_use]
    pub fn links_path(&self) -> &Path {
        &self.links_path
    }
}

/// The row counts `theirs` (of the previous output, after `prefix`) against the input's.
fn check_rows(
    prefix: &str,
    (their_rows, their_rejected): (Option<u64>, u64),
    rows_read: u64,
    rejected: u64,
) -> anyhow::Result<()> {
    if their_rows != Some(rows_read) || their_rejected != rejected {
        bail!(
            "{prefix}: was made from an input of {} rows ({their_rejected} rejected), and this \
             input has {rows_read} rows ({rejected} rejected)",
            their_rows.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        );
    }
    Ok(())
}

/// Why [`PreviousOutput::take`] found no state for a record id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The previous output does not list it.
    Unlisted,
    /// This input had it before.
    Repeated,
}

/// The name of `blindlink split --stage K --previous DIR`'s file of shard `I/N` for an input
/// named `stem`: `<stem>.stage-K.shard-I-of-N.csv`.
#[must_use]
pub fn stage_split_file_name(stem: &str, round: u32, shard: Shard) -> String {
    format!("{stem}.stage-{round}.{}.csv", shard.dir_name())
}

/// The stage and shard a file named as [`stage_split_file_name`] writes it, if it is one.
#[must_use]
pub fn stage_split_of(name: &str) -> Option<(u32, Shard)> {
    let rest = name.strip_suffix(".csv")?;
    let (rest, shard) = rest.rsplit_once('.')?;
    let shard = Shard::from_dir_name(shard)?;
    let (_, stage) = rest.rsplit_once('.')?;
    Some((CascadeStage::round_of_dir_name(stage)?, shard))
}

/// The records of `records` that stage `stage` keeps: those the previous stages' merged output
/// in `previous` left unlinked. `keys` are the names of the config's whole cascade, in order.
///
/// The input is either this party's whole input (every record listed in `previous` once, the
/// rows counted as its ledger counts them) or, named `<stem>.stage-K.shard-I-of-N.csv`, the
/// file `blindlink split --stage K --previous DIR` wrote for this stage and shard: then every
/// record must be one that `previous` left unlinked and whose key `K` falls in this shard
/// (`shard`, the run's shard and the assigner of round `K`; `records` already cut to key `K`).
///
/// # Errors
/// `previous` is not the merged output of stages `0..K` of this party's cascade over this
/// input (see the module docs), or cannot be read.
pub fn carried_records(
    config: &PartyConfig,
    keys: &[String],
    stage: CascadeStage,
    previous: &Path,
    records: &PartyRecords,
    shard: Option<(Shard, &ShardAssigner)>,
) -> anyhow::Result<Vec<bool>> {
    let shown = config.source.display().to_string();
    let split = match &config.input {
        InputSource::Csv(path) => path
            .file_name()
            .and_then(|n| stage_split_of(&n.to_string_lossy()))
            .map(|found| (path, found)),
        InputSource::Postgres(_) => None,
    };
    if let Some((path, (round, of))) = split {
        let ids: HashSet<&str> = records.ids.iter().map(String::as_str).collect();
        let mut output = read_previous(config, keys, stage, previous, None, Some(&ids))?;
        return split_records(
            &mut output,
            &shown,
            path,
            (round, of),
            stage,
            records,
            shard,
        );
    }
    let rejected = records.rejects.as_ref().map_or(0, |r| r.rows.len()) as u64;
    let mut output = read_previous(
        config,
        keys,
        stage,
        previous,
        Some((records.rows_read, rejected)),
        None,
    )?;
    if output.records() != records.ids.len() {
        bail!(
            "{}: {} lists {} records, and this input has {}: it is the output of another \
             input",
            output.prefix(),
            output.links_path().display(),
            output.records(),
            records.ids.len()
        );
    }
    let mut carried = Vec::with_capacity(records.ids.len());
    for id in &records.ids {
        carried.push(match output.take(id) {
            Ok(carried) => carried,
            Err(Missing::Unlisted) => bail!(
                "{}: record '{id}' of this input is not in {}: it is the output of another \
                 input",
                output.prefix(),
                output.links_path().display()
            ),
            Err(Missing::Repeated) => bail!(
                "{shown}: record id '{id}' appears twice in the input; a cascade stage needs \
                 unique record ids"
            ),
        });
    }
    Ok(carried)
}

/// [`carried_records`] of a stage's split file: every record carried, in this shard.
fn split_records(
    output: &mut PreviousOutput,
    shown: &str,
    path: &Path,
    (round, of): (u32, Shard),
    stage: CascadeStage,
    records: &PartyRecords,
    shard: Option<(Shard, &ShardAssigner)>,
) -> anyhow::Result<Vec<bool>> {
    let file = path.display();
    let Some((shard, assigner)) = shard else {
        bail!("{shown}: [input] csv {file} is a stage's split file, and this run has no shard");
    };
    if (round, of) != (stage.round(), shard) {
        bail!(
            "{shown}: [input] csv {file} is the split of stage {round} for shard {of}, and this \
             run is stage {} shard {shard}",
            stage.round()
        );
    }
    let keys = records.match_keys.first().map(|column| &column.keys);
    for (i, id) in records.ids.iter().enumerate() {
        match output.take(id) {
            Ok(true) => {}
            Ok(false) => bail!(
                "{}: record '{id}' of {file} was linked by an earlier stage: the file is not \
                 the split of this previous output (blindlink split --stage {round} --previous \
                 makes it)",
                output.prefix()
            ),
            Err(Missing::Unlisted) => bail!(
                "{}: record '{id}' of {file} is not in {}: the file is the split of another \
                 input",
                output.prefix(),
                output.links_path().display()
            ),
            Err(Missing::Repeated) => bail!(
                "{shown}: record id '{id}' appears twice in {file}; a cascade stage needs \
                 unique record ids"
            ),
        }
        let owner = match keys.and_then(|k| k.get(i)) {
            Some(Some(key)) => assigner.shard_of(key),
            _ => 0,
        };
        if owner != shard.index() {
            bail!(
                "{shown}: record '{id}' of {file} is in shard {owner} of stage {round}, not in \
                 shard {}: the file is not this shard's split",
                shard.index()
            );
        }
    }
    Ok(vec![true; records.ids.len()])
}
