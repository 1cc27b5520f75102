//! `blindlink merge --out OUT SHARD_DIR...`: combines the outputs of the `N` shards of a
//! sharded run (`serve`/`link --shard I/N`, each in its `shard-I-of-N` directory) into the
//! files an unsharded run writes:
//!
//! - `links.csv`: the shards' rows, shard by shard, under their common header (the columns are
//!   taken from the header, not assumed, so the merge does not depend on them);
//! - `ledger.json`: the disclosure ledger with the traffic summed per direction and kind, the
//!   counting disclosures (set and intersection sizes, matched records, scored pairs, ...)
//!   summed per party, kind and key, the per-pair disclosures of every shard after them, the
//!   `input` counts summed, and a `shards` list naming each shard's session; its `session_id`
//!   is the first 16 bytes of SHA-256 over the shards' session ids in shard order;
//! - `report.txt`: the unsharded report's text over the merged rows and ledger, after a line
//!   naming the shards;
//! - `rejects.csv`, if the shards wrote one.
//!
//! A shard is named by its directory (`shard-I-of-N`) or, for a server that served several
//! sessions, by the directory of the session's outputs inside it. A party's output directory
//! (a *shard root*) stands for every shard in it: its `shard-I-of-N` directories, or of a
//! cascade its `stage-K/shard-I-of-N` up to `--last-stage K`, each one's session directory
//! taken when it has no ledger of its own (a server's: one per session, named at run time), so
//! that a job engine's merge needs no glob. Every shard of the run must
//! be given exactly once, and the shards must come from one
//! sharded linkage: the same count, mode, role and peer, distinct sessions, the same header.
//! All files are written atomically, together: a refused merge writes nothing.
//!
//! **Cascade stages.** Shards inside `stage-K` directories (`serve`/`link --stage K --shard
//! I/N`) are the stages of a sharded exact cascade. Their merge takes every shard of stages 0
//! to the last one given (each stage complete; stages may have different shard counts) and
//! writes what the unsharded cascade writes:
//!
//! - `links.csv`: one row per record of the input, in stage 0's order: the row of the stage
//!   that linked the record; if none did, its `ambiguous` row if a stage found its key
//!   ambiguous (as the unsharded cascade reports it), else its `unmatched` row. A stage `K > 0`
//!   must hold exactly the records stages `0..K` left unlinked: a record that an earlier stage
//!   linked, or a count that differs, means that it ran against another previous output, and
//!   is refused;
//! - `ledger.json`: the traffic and counting disclosures summed over every shard of every
//!   stage (each stage discloses under its own key: the unsharded cascade's per-key entries),
//!   `input` as stage 0 counted it (the input; later stages read the same rows again), and a
//!   `stages` list: per stage its number, its key, its shards' sessions and its own merged
//!   ledger (traffic, disclosures, `input` summed over its shards). `blindlink serve`/`link
//!   --stage K --previous DIR` checks this list in `DIR`;
//! - `report.txt` and `rejects.csv` (stage 0's) as above.
//!
//! Stage 0's rows are streamed to the merged `links.csv`; the later stages' rows (the records
//! the first key left unlinked) are held until their record's stage 0 row comes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_party::{CascadeStage, LEDGER_FILE, LINKS_FILE, REJECTS_FILE, REPORT_FILE, Shard};
use blindlink_protocol::{
    Disclosure, DisclosureEntry, DisclosureLedger, LinkCounts, LinkOutcome, SessionId,
};
use sha2::Digest as _;

use crate::output::AtomicFile;

/// Arguments of `blindlink merge`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  blindlink merge --out out/registry out/registry/shard-0-of-2 out/registry/shard-1-of-2\n  \
                  blindlink merge --out merged-0 --last-stage 0 out/registry   # a shard root"
)]
pub struct MergeArgs {
    /// Where the merged `links.csv`, `ledger.json` and `report.txt` go (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The shards' output directories (`shard-I-of-N`, or a session's directory inside one),
    /// every shard of the run once; or a party's output directory (a *shard root*, the
    /// config's `[output] dir`), which stands for every shard in it (see `--last-stage`).
    #[arg(required = true, value_name = "SHARD_DIR")]
    pub shards: Vec<PathBuf>,
    /// With a shard root of an exact cascade: merge its stages 0 to K only (the `--previous`
    /// of stage K + 1), not the later ones it may hold.
    #[arg(long, value_name = "K")]
    pub last_stage: Option<u32>,
    /// No summary on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// One shard's outputs, read.
struct ShardOutput {
    dir: PathBuf,
    shard: Shard,
    /// The cascade stage (`stage-K` above the shard's directory), if any.
    stage: Option<u32>,
    ledger: DisclosureLedger,
    input: serde_json::Map<String, serde_json::Value>,
    party: Option<String>,
}

/// Runs `blindlink merge`.
///
/// # Errors
/// A directory that is not a shard's output, a missing or repeated shard, shards of different
/// runs (count, mode, role, peer, session, header), or a file that cannot be read or written.
pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let dirs = expand_roots(&args.shards, args.last_stage)?;
    let shards = read_shards(&dirs)?;
    if shards.iter().any(|s| s.stage.is_some()) {
        return run_cascade(&args, &shards);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let shards: Vec<&ShardOutput> = shards.iter().collect();
    let (links, counts) = merge_csv(&shards, &args.out, LINKS_FILE, true)?
        .with_context(|| format!("no {LINKS_FILE} in {}", shards[0].dir.display()))?;
    let rejects = merge_csv(&shards, &args.out, REJECTS_FILE, false)?.map(|(file, _)| file);
    let ledger = merge_ledgers(&shards);
    let mut value: serde_json::Value = serde_json::from_str(&ledger.to_json()?)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("input".to_owned(), sum_inputs(&shards).into());
        object.insert("shards".to_owned(), shard_sessions(&shards).into());
    }
    let title = format!("{}-way sharded run", shards.len());
    let report = report(&shards, &ledger, counts, &title, &shard_sources(&shards));
    write_merged(&args.out, links, rejects, &value, &report)?;
    if !args.quiet {
        eprintln!(
            "merged {} shards ({} mode): {}; outputs in {}",
            shards.len(),
            ledger.mode,
            blindlink_party::counts_line(&counts),
            args.out.display()
        );
    }
    Ok(())
}

/// Whether `dir` is a shard's output (named `shard-I-of-N`, or holding a ledger: a session's
/// directory inside one), not a shard root.
fn is_shard_output(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| Shard::from_dir_name(&n.to_string_lossy()))
        .is_some()
        || dir.join(LEDGER_FILE).is_file()
}

/// The names of the subdirectories of `dir`, sorted (whatever order the file system lists).
fn subdirectories(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The directories `dirs` stand for: a shard's output stands for itself; a shard root (a
/// party's output directory) for every `shard-I-of-N` in it, or of a cascade every
/// `stage-K/shard-I-of-N` with `K <= last_stage`. A shard directory without a ledger stands
/// for the one session directory inside it that has one (a server writes one per session), so
/// that a job engine's merge needs no glob of names known only at run time.
fn expand_roots(dirs: &[PathBuf], last_stage: Option<u32>) -> anyhow::Result<Vec<PathBuf>> {
    let mut expanded = Vec::new();
    let mut roots = 0;
    for dir in dirs {
        if is_shard_output(dir) {
            expanded.push(dir.clone());
            continue;
        }
        roots += 1;
        let names = subdirectories(dir)?;
        let stages: Vec<(u32, &String)> = names
            .iter()
            .filter_map(|n| CascadeStage::round_of_dir_name(n).map(|k| (k, n)))
            .filter(|(k, _)| last_stage.is_none_or(|last| *k <= last))
            .collect();
        let plain: Vec<&String> = names
            .iter()
            .filter(|n| Shard::from_dir_name(n).is_some())
            .collect();
        let shard_dirs: Vec<PathBuf> = match (stages.is_empty(), plain.is_empty()) {
            (true, true) => bail!(
                "{} is neither a shard's output directory nor a shard root: it holds no \
                 shard-I-of-N{} directory",
                dir.display(),
                last_stage.map_or_else(
                    || " or stage-K".to_owned(),
                    |k| format!(" or stage-K (K <= {k})")
                )
            ),
            (false, false) => bail!(
                "mixed runs: {} holds both stage-K and shard-I-of-N directories; give the shard \
                 directories of one sharded linkage",
                dir.display()
            ),
            (true, false) => plain.iter().map(|n| dir.join(n)).collect(),
            (false, true) => {
                let mut all = Vec::new();
                for (_, stage) in &stages {
                    let stage_dir = dir.join(stage);
                    for name in subdirectories(&stage_dir)? {
                        if Shard::from_dir_name(&name).is_some() {
                            all.push(stage_dir.join(name));
                        }
                    }
                }
                all
            }
        };
        for shard_dir in shard_dirs {
            if shard_dir.join(LEDGER_FILE).is_file() {
                expanded.push(shard_dir);
                continue;
            }
            let sessions: Vec<String> = subdirectories(&shard_dir)?
                .into_iter()
                .filter(|n| shard_dir.join(n).join(LEDGER_FILE).is_file())
                .collect();
            match &sessions[..] {
                [session] => expanded.push(shard_dir.join(session)),
                [] => bail!(
                    "{} holds no outputs (no {LEDGER_FILE}, nor a session's directory with one): \
                     its shard has not completed",
                    shard_dir.display()
                ),
                more => bail!(
                    "{} holds the outputs of {} sessions ({}); give the directory of this run's",
                    shard_dir.display(),
                    more.len(),
                    more.join(", ")
                ),
            }
        }
    }
    if last_stage.is_some() && roots == 0 {
        bail!(
            "--last-stage selects the stages of a shard root (a party's output directory); the \
             directories given are shards' outputs: give the stages' shards to merge instead"
        );
    }
    Ok(expanded)
}

/// Reads every shard's ledger and checks that they form one whole sharded run.
fn read_shards(dirs: &[PathBuf]) -> anyhow::Result<Vec<ShardOutput>> {
    let mut shards = Vec::with_capacity(dirs.len());
    for dir in dirs {
        // A shard's directory, or a session's directory inside it (a server of several
        // sessions writes one per session).
        let shard_of = |path: Option<&Path>| {
            path.and_then(Path::file_name)
                .and_then(|n| Shard::from_dir_name(&n.to_string_lossy()))
        };
        let (shard, shard_dir) = match shard_of(Some(dir)) {
            Some(shard) => (Some(shard), Some(dir.as_path())),
            None => (shard_of(dir.parent()), dir.parent()),
        };
        let stage = shard_dir
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .and_then(|n| CascadeStage::round_of_dir_name(&n.to_string_lossy()));
        let Some(shard) = shard else {
            bail!(
                "{} is not a shard's output directory (expected a directory named \
                 shard-I-of-N, as serve and link --shard I/N write, or a session's directory \
                 inside one)",
                dir.display()
            );
        };
        let path = dir.join(LEDGER_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let ledger = DisclosureLedger::from_json(&text)
            .with_context(|| format!("invalid ledger {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("invalid ledger {}", path.display()))?;
        let input = value
            .get("input")
            .and_then(serde_json::Value::as_object)
            .cloned()
            .unwrap_or_default();
        let party = std::fs::read_to_string(dir.join(REPORT_FILE))
            .ok()
            .and_then(|report| party_of_report(&report));
        shards.push(ShardOutput {
            dir: dir.clone(),
            shard,
            stage,
            ledger,
            input,
            party,
        });
    }
    if let (Some(staged), Some(plain)) = (
        shards.iter().find(|s| s.stage.is_some()),
        shards.iter().find(|s| s.stage.is_none()),
    ) {
        bail!(
            "mixed runs: {} is a shard of cascade stage {} and {} is a shard of no stage; merge \
             the shards of one sharded linkage",
            staged.dir.display(),
            staged.stage.unwrap_or_default(),
            plain.dir.display()
        );
    }
    shards.sort_by_key(|s| (s.stage, s.shard.index()));
    let stages: Vec<Option<u32>> = {
        let mut stages: Vec<Option<u32>> = shards.iter().map(|s| s.stage).collect();
        stages.dedup();
        stages
    };
    if let Some(last) = stages.last().copied().flatten() {
        let missing: Vec<String> = (0..=last)
            .filter(|k| !stages.contains(&Some(*k)))
            .map(|k| k.to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "stage {} of the cascade {} missing; merge every shard of stages 0 to {last}",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" }
            );
        }
    }
    check_same_linkage(&shards)?;
    for stage in stages {
        let group: Vec<&ShardOutput> = shards.iter().filter(|s| s.stage == stage).collect();
        check_complete(&group)?;
    }
    Ok(shards)
}

/// `stage K: ` before a message about the shards of cascade stage K.
fn stage_prefix(stage: Option<u32>) -> String {
    stage.map_or_else(String::new, |k| format!("stage {k}: "))
}

/// The shards of one (stage of a) sharded run: one shard count, every shard exactly once.
fn check_complete(shards: &[&ShardOutput]) -> anyhow::Result<()> {
    let first = shards[0];
    let prefix = stage_prefix(first.stage);
    let count = first.shard.count();
    for pair in shards.windows(2) {
        if pair[0].shard == pair[1].shard {
            bail!(
                "{prefix}shard {} is given twice ({} and {})",
                pair[0].shard,
                pair[0].dir.display(),
                pair[1].dir.display()
            );
        }
    }
    for s in shards {
        if s.shard.count() != count {
            bail!(
                "mixed runs: {} has shard count {count} and {} has shard count {}; merge the \
                 shards of one sharded linkage",
                first.dir.display(),
                s.dir.display(),
                s.shard.count()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !shards.iter().any(|s| s.shard.index() == *i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{prefix}shard {} of the {count}-way run {} missing; merge every shard",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(())
}

/// Every shard (of every stage) is of one linkage: one mode, role and peer, distinct sessions.
fn check_same_linkage(shards: &[ShardOutput]) -> anyhow::Result<()> {
    let first = &shards[0];
    for pair in shards.windows(2) {
        if pair[0].stage == pair[1].stage && pair[0].shard == pair[1].shard {
            bail!(
                "{}shard {} is given twice ({} and {})",
                stage_prefix(pair[0].stage),
                pair[0].shard,
                pair[0].dir.display(),
                pair[1].dir.display()
            );
        }
    }
    for s in shards {
        let differ = |what: &str, a: String, b: String| {
            anyhow::anyhow!(
                "mixed runs: {} has {what} {a} and {} has {what} {b}; merge the shards of one \
                 sharded linkage",
                first.dir.display(),
                s.dir.display()
            )
        };
        if s.stage == first.stage && s.shard.count() != first.shard.count() {
            return Err(differ(
                "shard count",
                first.shard.count().to_string(),
                s.shard.count().to_string(),
            ));
        }
        if s.ledger.mode != first.ledger.mode {
            return Err(differ(
                "mode",
                first.ledger.mode.to_string(),
                s.ledger.mode.to_string(),
            ));
        }
        if s.ledger.role != first.ledger.role {
            return Err(differ(
                "role",
                first.ledger.role.to_string(),
                s.ledger.role.to_string(),
            ));
        }
        if s.ledger.peer != first.ledger.peer {
            return Err(differ(
                "peer",
                first.ledger.peer.clone(),
                s.ledger.peer.clone(),
            ));
        }
    }
    for (i, a) in shards.iter().enumerate() {
        if let Some(b) = shards[i + 1..]
            .iter()
            .find(|b| b.ledger.session_id == a.ledger.session_id)
        {
            bail!(
                "mixed runs: {} and {} hold the same session {}, so one of them is not the \
                 shard its directory names",
                a.dir.display(),
                b.dir.display(),
                a.ledger.session_id
            );
        }
    }
    Ok(())
}

/// `blindlink exact session ... (registry as responder) with insurer` -> `registry`.
fn party_of_report(report: &str) -> Option<String> {
    let first = report.lines().next()?;
    let (_, rest) = first.split_once(" (")?;
    let (party, _) = rest.split_once(" as ")?;
    Some(party.to_owned())
}

type CsvOut = csv::Writer<AtomicFile>;

/// Concatenates `file` of every shard under their common header into a staged (not yet
/// committed) file in `out_dir`, counting the rows by their `status` column;
/// `None` if no shard has the file (and it is not `required`).
fn merge_csv(
    shards: &[&ShardOutput],
    out_dir: &Path,
    file: &str,
    required: bool,
) -> anyhow::Result<Option<(CsvOut, LinkCounts)>> {
    let mut out: Option<(CsvOut, csv::StringRecord, Option<usize>)> = None;
    let mut counts = LinkCounts::default();
    let destination = |dir: &Path| dir.join(file);
    for shard in shards {
        let path = destination(&shard.dir);
        if !required && !path.exists() {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(!required)
            .from_path(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let header = reader
            .headers()
            .with_context(|| format!("cannot read {}", path.display()))?
            .clone();
        let (writer, expected, status) = match &mut out {
            Some(state) => state,
            None => {
                let target = out_dir.join(file);
                let mut writer = csv::WriterBuilder::new()
                    .flexible(!required)
                    .from_writer(AtomicFile::create(&target)?);
                writer.write_record(&header)?;
                let status = header.iter().position(|h| h == "status");
                out.insert((writer, header.clone(), status))
            }
        };
        if header != *expected {
            bail!(
                "mixed runs: {} has the columns {} and {} has {}",
                destination(&shards[0].dir).display(),
                expected.iter().collect::<Vec<_>>().join(","),
                path.display(),
                header.iter().collect::<Vec<_>>().join(",")
            );
        }
        for (i, record) in reader.records().enumerate() {
            let record = record.with_context(|| format!("{}:{}", path.display(), i + 2))?;
            if let Some(column) = *status {
                match record.get(column).unwrap_or_default() {
                    "linked" => counts.linked += 1,
                    "suspected-wrong-person" => counts.suspected_wrong_person += 1,
                    "ambiguous" => counts.ambiguous += 1,
                    _ => counts.unmatched += 1,
                }
            }
            writer
                .write_record(&record)
                .with_context(|| format!("cannot write {file}"))?;
        }
    }
    Ok(out.map(|(writer, _, _)| (writer, counts)))
}

/// The disclosure's kind and key, for summing: `None` for the per-pair disclosures, which are
/// listed, not summed.
fn summed_slot(disclosure: &Disclosure) -> Option<(&'static str, &str)> {
    match disclosure {
        Disclosure::Schema { .. } => Some(("schema", "")),
        Disclosure::SetSize { key, .. } => Some(("set_size", key)),
        Disclosure::IntersectionSize { key, .. } => Some(("intersection_size", key)),
        Disclosure::MatchedRecords { key, .. } => Some(("matched_records", key)),
        Disclosure::AgreementScores { .. } => Some(("agreement_scores", "")),
        Disclosure::Clks { .. } => Some(("clks", "")),
        Disclosure::CandidateTokens { .. } => Some(("candidate_tokens", "")),
        Disclosure::SharedTokenCounts { .. } | Disclosure::PaddedTokenCounts { .. } => None,
    }
}

fn add(into: &mut Disclosure, from: &Disclosure) {
    match (into, from) {
        (Disclosure::SetSize { size: a, .. }, Disclosure::SetSize { size: b, .. })
        | (
            Disclosure::IntersectionSize { size: a, .. },
            Disclosure::IntersectionSize { size: b, .. },
        )
        | (
            Disclosure::MatchedRecords { count: a, .. },
            Disclosure::MatchedRecords { count: b, .. },
        )
        | (Disclosure::AgreementScores { pairs: a }, Disclosure::AgreementScores { pairs: b })
        | (Disclosure::Clks { count: a }, Disclosure::Clks { count: b })
        | (
            Disclosure::CandidateTokens { records: a },
            Disclosure::CandidateTokens { records: b },
        ) => *a += b,
        // The schema is the same in every shard (the handshake checked it): counted once.
        _ => {}
    }
}

fn merge_ledgers(shards: &[&ShardOutput]) -> DisclosureLedger {
    let first = &shards[0].ledger;
    let mut digest = sha2::Sha256::new();
    for shard in shards {
        digest.update(shard.ledger.session_id.as_bytes());
    }
    let mut id = [0u8; SessionId::LEN];
    id.copy_from_slice(&digest.finalize()[..SessionId::LEN]);
    let mut merged = DisclosureLedger::new(
        SessionId::from_bytes(id),
        first.role,
        first.mode,
        &first.peer,
    );
    let mut summed: Vec<DisclosureEntry> = Vec::new();
    let mut pairs: Vec<DisclosureEntry> = Vec::new();
    for shard in shards {
        for (merged_side, side) in [
            (&mut merged.sent, &shard.ledger.sent),
            (&mut merged.received, &shard.ledger.received),
        ] {
            merged_side.total.messages += side.total.messages;
            merged_side.total.bytes += side.total.bytes;
            for (kind, count) in &side.by_kind {
                let entry = merged_side.by_kind.entry(kind.clone()).or_default();
                entry.messages += count.messages;
                entry.bytes += count.bytes;
            }
        }
        for entry in shard.ledger.disclosures() {
            let Some(slot) = summed_slot(&entry.disclosure) else {
                pairs.push(entry);
                continue;
            };
            match summed.iter_mut().find(|e| {
                e.learned_by == entry.learned_by && summed_slot(&e.disclosure) == Some(slot)
            }) {
                Some(existing) => add(&mut existing.disclosure, &entry.disclosure),
                None => summed.push(entry.clone()),
            }
        }
    }
    for entry in summed.into_iter().chain(pairs) {
        merged.push_disclosure(entry);
    }
    merged
}

/// The `input` counts of `shards`, summed.
fn sum_inputs(shards: &[&ShardOutput]) -> serde_json::Map<String, serde_json::Value> {
    let mut input = serde_json::Map::new();
    for shard in shards {
        for (name, v) in &shard.input {
            let sum = input
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                + v.as_u64().unwrap_or(0);
            input.insert(name.clone(), sum.into());
        }
    }
    input
}

/// The unsharded report's text over the merged ledger, with the merged counts, after a first
/// line naming the run (`title`) and what it was merged from (`sources`).
fn report(
    shards: &[&ShardOutput],
    ledger: &DisclosureLedger,
    counts: LinkCounts,
    title: &str,
    sources: &str,
) -> String {
    let party = shards[0]
        .party
        .clone()
        .unwrap_or_else(|| "this party".to_owned());
    let outcome = LinkOutcome {
        mode: ledger.mode,
        role: ledger.role,
        rows: Vec::new().into(),
        counts,
        learned: blindlink_protocol::Learned::default(),
        validation: None,
    };
    // The report's first two lines name the session and count the rows, which the merge
    // has and the rows-less outcome has not; the rest (what each side learned, the traffic)
    // comes from the ledger.
    let body = blindlink_party::report_text(&party, &outcome, ledger, &[]);
    let total = counts.linked + counts.suspected_wrong_person + counts.ambiguous + counts.unmatched;
    let mut text = format!(
        "blindlink {} {title} {} ({} as {}) with {}, merged from {sources}\nrecords: {total}\n",
        ledger.mode, ledger.session_id, party, ledger.role, ledger.peer,
    );
    if total > 0 {
        text.push_str(&format!("  {}\n", blindlink_party::counts_line(&counts)));
    }
    for line in body.lines().skip(2) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The match key a stage linked by: the key its ledger's disclosures name.
fn stage_key(shards: &[&ShardOutput]) -> String {
    shards
        .iter()
        .flat_map(|s| s.ledger.disclosures())
        .find_map(|e| match e.disclosure {
            Disclosure::SetSize { key, .. }
            | Disclosure::IntersectionSize { key, .. }
            | Disclosure::MatchedRecords { key, .. } => Some(key),
            _ => None,
        })
        .unwrap_or_default()
}

/// `blindlink merge` of the shards of cascade stages 0 to K (see the module docs); a refused
/// merge leaves no output directory it created.
fn run_cascade(args: &MergeArgs, shards: &[ShardOutput]) -> anyhow::Result<()> {
    let created = !args.out.exists();
    let result = write_cascade(args, shards);
    if result.is_err() && created {
        // Empty: every file was staged as a temporary, removed when dropped.
        let _ = std::fs::remove_dir(&args.out);
    }
    result
}

fn write_cascade(args: &MergeArgs, shards: &[ShardOutput]) -> anyhow::Result<()> {
    let mut stages: Vec<(u32, Vec<&ShardOutput>)> = Vec::new();
    for shard in shards {
        let stage = shard.stage.unwrap_or_default();
        match stages.last_mut() {
            Some((k, group)) if *k == stage => group.push(shard),
            _ => stages.push((stage, vec![shard])),
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (links, counts) = merge_stage_links(&stages, &args.out)?;
    let first_stage = &stages[0].1;
    let rejects = merge_csv(first_stage, &args.out, REJECTS_FILE, false)?.map(|(file, _)| file);
    let all: Vec<&ShardOutput> = shards.iter().collect();
    let ledger = merge_ledgers(&all);
    let mut value: serde_json::Value = serde_json::from_str(&ledger.to_json()?)?;
    let mut listed = Vec::new();
    for (k, group) in &stages {
        let stage_ledger = merge_ledgers(group);
        let mut stage_value: serde_json::Value = serde_json::from_str(&stage_ledger.to_json()?)?;
        if let Some(object) = stage_value.as_object_mut() {
            object.insert("input".to_owned(), sum_inputs(group).into());
        }
        listed.push(serde_json::json!({
            "stage": k,
            "key": stage_key(group),
            "shards": shard_sessions(group),
            "ledger": stage_value,
        }));
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("input".to_owned(), sum_inputs(first_stage).into());
        object.insert("stages".to_owned(), listed.into());
    }
    let title = format!("{}-stage sharded cascade", stages.len());
    let sources = stages
        .iter()
        .map(|(k, group)| format!("stage {k} ({}): {}", stage_key(group), shard_sources(group)))
        .collect::<Vec<_>>()
        .join("; ");
    let report = report(&all, &ledger, counts, &title, &sources);
    write_merged(&args.out, links, rejects, &value, &report)?;
    if !args.quiet {
        eprintln!(
            "merged {} stages of {} shards ({} mode): {}; outputs in {}",
            stages.len(),
            shards.len(),
            ledger.mode,
            blindlink_party::counts_line(&counts),
            args.out.display()
        );
    }
    Ok(())
}

/// Each shard and the session that made it, for the merged ledger.
fn shard_sessions(shards: &[&ShardOutput]) -> Vec<serde_json::Value> {
    shards
        .iter()
        .map(|s| {
            serde_json::json!({
                "shard": s.shard.to_string(),
                "session_id": s.ledger.session_id.to_string(),
            })
        })
        .collect()
}

/// `shard I (session S), ...`, for the merged report.
fn shard_sources(shards: &[&ShardOutput]) -> String {
    shards
        .iter()
        .map(|s| format!("shard {} (session {})", s.shard, s.ledger.session_id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the merged `ledger.json` (`ledger`) and `report.txt` (`report`) next to the staged
/// `links` and `rejects`, then renames all of them into place, only now that all are
/// complete.
fn write_merged(
    out: &Path,
    links: CsvOut,
    rejects: Option<CsvOut>,
    ledger: &serde_json::Value,
    report: &str,
) -> anyhow::Result<()> {
    let mut ledger_file = AtomicFile::create(&out.join(LEDGER_FILE))?;
    ledger_file
        .write_all(serde_json::to_string_pretty(ledger)?.as_bytes())
        .and_then(|()| ledger_file.write_all(b"\n"))
        .with_context(|| format!("cannot write {}", out.join(LEDGER_FILE).display()))?;
    let mut report_file = AtomicFile::create(&out.join(REPORT_FILE))?;
    report_file
        .write_all(report.as_bytes())
        .with_context(|| format!("cannot write {}", out.join(REPORT_FILE).display()))?;
    links.into_inner()?.commit()?;
    ledger_file.commit()?;
    if let Some(rejects) = rejects {
        rejects.into_inner()?.commit()?;
    }
    report_file.commit()
}

/// A row of a cascade stage `K > 0`, waiting for its record's row of stage 0.
struct LaterRow {
    stage: u32,
    row: csv::StringRecord,
    linked: bool,
    ambiguous: bool,
    /// Its file (an index into the files read) and line, for messages.
    file: usize,
    line: u64,
    /// Stage 0 had its record.
    used: bool,
}

/// A reader of `shard`'s `links.csv`, with its path and its id and status columns, checked to
/// have `header`'s columns (the first file opened sets them, with its path).
fn open_links(
    shard: &ShardOutput,
    header: &mut Option<(csv::StringRecord, PathBuf)>,
) -> anyhow::Result<(csv::Reader<std::fs::File>, PathBuf, usize, usize)> {
    let path = shard.dir.join(LINKS_FILE);
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let this = reader
        .headers()
        .with_context(|| format!("cannot read {}", path.display()))?
        .clone();
    let (expected, first_path) = header.get_or_insert_with(|| (this.clone(), path.clone()));
    if this != *expected {
        bail!(
            "mixed runs: {} has the columns {} and {} has {}",
            first_path.display(),
            expected.iter().collect::<Vec<_>>().join(","),
            path.display(),
            this.iter().collect::<Vec<_>>().join(",")
        );
    }
    let column = |name: &str| {
        this.iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no column {name}", path.display()))
    };
    let (id_column, status_column) = (column("local_record_id")?, column("status")?);
    Ok((reader, path, id_column, status_column))
}

/// `(linked, ambiguous)` of a row's status.
fn status_of(status: &str) -> (bool, bool) {
    match status {
        "linked" | "suspected-wrong-person" => (true, false),
        "ambiguous" => (false, true),
        _ => (false, false),
    }
}

/// The merged cascade's `links.csv` (staged, not committed) and its counts: stage 0's rows in
/// its order, each replaced by the row of the stage that linked it, or by an ambiguous row.
///
/// Stage 0's rows are streamed; only the later stages' rows are held (the records the first
/// key left unlinked, with their rows: about 150–250 B each), so the memory follows what
/// stage 0 did not link, not the input.
fn merge_stage_links(
    stages: &[(u32, Vec<&ShardOutput>)],
    out_dir: &Path,
) -> anyhow::Result<(CsvOut, LinkCounts)> {
    let mut header: Option<(csv::StringRecord, PathBuf)> = None;
    let first = stages[0].0;
    let last = stages.last().map_or(first, |(k, _)| *k);
    // The later stages' rows by record id, in stage order, and how many each stage holds.
    let mut later: std::collections::HashMap<String, Vec<LaterRow>> =
        std::collections::HashMap::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut held: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for (k, group) in &stages[1..] {
        let k = *k;
        for shard in group {
            let file = files.len();
            files.push(shard.dir.join(LINKS_FILE));
            let (mut reader, path, id_column, status_column) = open_links(shard, &mut header)?;
            for (i, row) in reader.records().enumerate() {
                let line = i as u64 + 2;
                let row = row.with_context(|| format!("{}:{line}", path.display()))?;
                let id = row.get(id_column).unwrap_or_default().to_owned();
                let (linked, ambiguous) = status_of(row.get(status_column).unwrap_or_default());
                let rows = later.entry(id).or_default();
                if rows.iter().any(|r| r.stage == k) {
                    bail!(
                        "mixed runs: {}:{line}: record '{}' is in two shards of stage {k}",
                        path.display(),
                        row.get(id_column).unwrap_or_default()
                    );
                }
                rows.push(LaterRow {
                    stage: k,
                    row,
                    linked,
                    ambiguous,
                    file,
                    line,
                    used: false,
                });
                *held.entry(k).or_default() += 1;
            }
        }
    }
    // Stage 0, streamed: each row, or the row of the stage that linked its record.
    let mut carried_before: std::collections::BTreeMap<u32, usize> =
        std::collections::BTreeMap::new();
    let mut writer: Option<CsvOut> = None;
    let mut counts = LinkCounts::default();
    // One file open at a time (a stage may have thousands of shards).
    for shard in &stages[0].1 {
        let (mut reader, path, id_column, status_column) = open_links(shard, &mut header)?;
        let writer = match &mut writer {
            Some(writer) => writer,
            None => {
                let mut new =
                    csv::Writer::from_writer(AtomicFile::create(&out_dir.join(LINKS_FILE))?);
                if let Some((columns, _)) = &header {
                    new.write_record(columns)?;
                }
                writer.insert(new)
            }
        };
        for (i, row) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let row = row.with_context(|| format!("{}:{line}", path.display()))?;
            let id = row.get(id_column).unwrap_or_default();
            let (linked, ambiguous) = status_of(row.get(status_column).unwrap_or_default());
            let mut linked_by = linked.then_some(first);
            let mut is_ambiguous = ambiguous;
            let mut chosen: Option<csv::StringRecord> = None;
            let mut rows = later.get_mut(id);
            for k in first + 1..=last {
                if linked_by.is_none() {
                    *carried_before.entry(k).or_default() += 1;
                }
                let found = rows
                    .as_deref_mut()
                    .and_then(|rows| rows.iter_mut().find(|r| r.stage == k));
                let Some(r) = found else {
                    continue;
                };
                if r.used {
                    bail!(
                        "mixed runs: {}:{line}: record '{id}' is in two shards of stage {first}",
                        path.display()
                    );
                }
                r.used = true;
                if let Some(by) = linked_by {
                    bail!(
                        "mixed runs: {}:{}: record '{id}' was linked by stage {by}, so stage {} \
                         ran against another previous output (--previous must be the merge of \
                         stages 0 to {} of this run)",
                        files[r.file].display(),
                        r.line,
                        r.stage,
                        r.stage - 1
                    );
                }
                if r.linked {
                    chosen = Some(std::mem::take(&mut r.row));
                    linked_by = Some(r.stage);
                } else if r.ambiguous && !is_ambiguous {
                    chosen = Some(std::mem::take(&mut r.row));
                    is_ambiguous = true;
                }
            }
            let chosen = chosen.as_ref().unwrap_or(&row);
            match chosen.get(status_column).unwrap_or_default() {
                "linked" => counts.linked += 1,
                "suspected-wrong-person" => counts.suspected_wrong_person += 1,
                "ambiguous" => counts.ambiguous += 1,
                _ => counts.unmatched += 1,
            }
            writer
                .write_record(chosen)
                .with_context(|| format!("cannot write {LINKS_FILE}"))?;
        }
    }
    let (Some(writer), Some((columns, _))) = (writer, &header) else {
        bail!("no {LINKS_FILE} in the stages' shards");
    };
    for rows in later.values() {
        if let Some(r) = rows.iter().find(|r| !r.used) {
            let id = columns
                .iter()
                .position(|h| h == "local_record_id")
                .and_then(|c| r.row.get(c))
                .unwrap_or_default();
            bail!(
                "mixed runs: {}:{}: record '{id}' is not in stage {first}'s links, so stage {} \
                 ran on another input",
                files[r.file].display(),
                r.line,
                r.stage
            );
        }
    }
    for (k, _) in &stages[1..] {
        let (held, carried) = (
            held.get(k).copied().unwrap_or(0),
            carried_before.get(k).copied().unwrap_or(0),
        );
        if held != carried {
            bail!(
                "mixed runs: stage {k} holds {held} records, and stages 0 to {} left \
                 {carried} unlinked: it ran against another previous output (--previous \
                 must be the merge of stages 0 to {} of this run)",
                k - 1,
                k - 1
            );
        }
    }
    Ok((writer, counts))
}
