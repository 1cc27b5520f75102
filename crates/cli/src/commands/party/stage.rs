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
//! Records are looked up by the first 16 bytes of the SHA-256 of their local id (a collision
//! among 10^9 ids has probability below 10^-20), so the lookup holds about 40 bytes per
//! record of the input for as long as the selection takes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use anyhow::{Context, bail};
use blindlink_party::{CascadeStage, LEDGER_FILE, LINKS_FILE, PartyRecords};
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

/// The records of `records` (this party's whole input) that stage `stage` keeps: those the
/// previous stages' merged output in `previous` left unlinked. `keys` are the names of the
/// config's whole cascade, in order.
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
) -> anyhow::Result<Vec<bool>> {
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
    let rejected = records.rejects.as_ref().map_or(0, |r| r.rows.len()) as u64;
    let (their_rows, their_rejected) = (count("rows_read"), count("rows_rejected"));
    if their_rows != Some(records.rows_read) || their_rejected.unwrap_or(0) != rejected {
        bail!(
            "{prefix}: was made from an input of {} rows ({} rejected), and this input has {} \
             rows ({rejected} rejected)",
            their_rows.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
            their_rejected.unwrap_or(0),
            records.rows_read
        );
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
    let mut previously: HashMap<u128, Previously> = HashMap::with_capacity(records.ids.len());
    let mut record = csv::StringRecord::new();
    let mut line = 1u64;
    while reader
        .read_record(&mut record)
        .with_context(|| format!("{}:{}", links_path.display(), line + 1))?
    {
        line += 1;
        let at = || format!("{}:{line}", links_path.display());
        let id = record.get(id_column).unwrap_or_default();
        let state = match record.get(status_column).unwrap_or_default() {
            "linked" => Previously::Linked,
            "unmatched" | "ambiguous" => Previously::Carried,
            other => bail!(
                "{}: status '{other}' is not one of an exact cascade's (linked, ambiguous, \
                 unmatched)",
                at()
            ),
        };
        match previously.entry(id_digest(id)) {
            Entry::Occupied(_) => bail!(
                "{}: record '{id}' is listed twice; a cascade stage needs unique record ids",
                at()
            ),
            Entry::Vacant(slot) => {
                slot.insert(state);
            }
        }
    }
    if previously.len() != records.ids.len() {
        bail!(
            "{prefix}: {} lists {} records, and this input has {}: it is the output of another \
             input",
            links_path.display(),
            previously.len(),
            records.ids.len()
        );
    }
    let mut carried = Vec::with_capacity(records.ids.len());
    for id in &records.ids {
        let Some(state) = previously.get_mut(&id_digest(id)) else {
            bail!(
                "{prefix}: record '{id}' of this input is not in {}: it is the output of another \
                 input",
                links_path.display()
            );
        };
        carried.push(match *state {
            Previously::Seen => bail!(
                "{shown}: record id '{id}' appears twice in the input; a cascade stage needs \
                 unique record ids"
            ),
            other => {
                *state = Previously::Seen;
                other == Previously::Carried
            }
        });
    }
    Ok(carried)
}
