//! The files a completed session leaves in the output directory: `links.csv` (one row per
//! local record), `ledger.json` (the disclosure ledger) and `report.txt` (a short summary for
//! a person). All three are staged as temporary files first and renamed into place only when
//! all of them are complete, so a failed run leaves the directory as it was.
//!
//! In `validate`, the comparing side also writes `model.json` (the fitted Fellegi–Sunter m/u
//! table and prior) and `explanations.csv` (every flagged pair's level and weight per field,
//! the prior and the total; only the header when nothing is flagged), staged and renamed with
//! the others.
//!
//! Under `[input] invalid_rows = "reject"` a fourth file, `rejects.csv`, lists the rows
//! withheld from the session (file, line, field, reason, then the row as read), written with
//! the other three. `ledger.json` gains an `input` member counting rows read, rejected and era
//! dates read leniently (local facts: none of it reaches the peer).
//!
//! The output directory is checked, created and locked by [`claim_output_dir`] before a party
//! listens or connects, so a session never runs only to fail at the end, and two runs into one
//! directory never mix their files: the second is refused while the first holds the lock.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use blindlink_protocol::{DisclosureLedger, LinkOutcome};

use super::config::PartyConfig;
use super::input::PartyRecords;
use crate::output::AtomicFile;

pub use blindlink_party::{
    EXPLANATIONS_FILE, LEDGER_FILE, LINKS_FILE, MODEL_FILE, REJECTS_FILE, REPORT_FILE,
    TRANSCRIPT_FILE,
};
/// The lock file [`claim_output_dir`] holds in the output directory while a run uses it.
pub const LOCK_FILE: &str = ".blindlink.lock";

/// The output directory, checked, created and locked for one run; unlocked (and the lock
/// file removed, and the directories it created removed again if they are still empty) when
/// dropped.
#[derive(Debug)]
pub struct OutputLock {
    dir: PathBuf,
    lock_path: PathBuf,
    file: Option<std::fs::File>,
    created: Vec<PathBuf>,
}

impl OutputLock {
    /// The locked directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Only the holder removes the lock file: a claim that was refused (or failed) must
        // leave the holder's file in place, or the next run would lock a fresh file at the
        // path and run alongside the holder. Removed while still locked, so a run that opened
        // it meanwhile sees it vanish and retries on a fresh file (see `claim_output_dir`).
        if let Some(file) = self.file.take() {
            let _ = std::fs::remove_file(&self.lock_path);
            drop(file);
        }
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Checks, creates and locks `config`'s `[output] dir` before any session: call it before
/// listening or connecting, and keep the lock until the outputs are written.
///
/// # Errors
/// The directory cannot be created or written (the message names the config key and the
/// path), or another run holds it.
pub fn claim_output_dir(config: &PartyConfig) -> anyhow::Result<OutputLock> {
    let dir = &config.output_dir;
    let shown = config.source.display();
    let bad = |why: String| anyhow::anyhow!("{shown}: output.dir: {why}");
    let mut created = Vec::new();
    let mut missing = Vec::new();
    let mut ancestor = dir.as_path();
    while !ancestor.as_os_str().is_empty() && !ancestor.exists() {
        missing.push(ancestor.to_path_buf());
        match ancestor.parent() {
            Some(parent) => ancestor = parent,
            None => break,
        }
    }
    for path in missing.iter().rev() {
        match std::fs::create_dir(path) {
            Ok(()) => created.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                for made in created.iter().rev() {
                    let _ = std::fs::remove_dir(made);
                }
                return Err(bad(format!("cannot create {}: {e}", dir.display())));
            }
        }
    }
    let mut lock = OutputLock {
        dir: dir.clone(),
        lock_path: dir.join(LOCK_FILE),
        file: None,
        created,
    };
    if !dir.is_dir() {
        return Err(bad(format!("{} is not a directory", dir.display())));
    }
    for _ in 0..8 {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock.lock_path)
            .map_err(|e| bad(format!("cannot write in {}: {e}", dir.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(bad(format!(
                    "{} is in use by another blindlink run (it holds {}); wait for it to end \
                     or give each concurrent run its own output directory",
                    dir.display(),
                    lock.lock_path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(bad(format!(
                    "cannot lock {}: {e}",
                    lock.lock_path.display()
                )));
            }
        }
        // The holder before us may have removed the file after we opened it: the lock must
        // be on the file that is at the path now.
        if same_file(&file, &lock.lock_path) {
            lock.file = Some(file);
            return Ok(lock);
        }
    }
    Err(bad(format!(
        "cannot lock {}: it keeps being replaced",
        lock.lock_path.display()
    )))
}

#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &std::fs::File, path: &Path) -> bool {
    path.exists()
}

/// Writes the three output files into `dir` (created if missing), `transcript.bin` when
/// `transcript` is given, and `model.json` and `explanations.csv` on validate's comparing
/// side.
///
/// # Errors
/// The directory cannot be created or a file cannot be written; then none of the files is
/// replaced.
pub fn write_outputs(
    dir: &Path,
    outcome: &LinkOutcome,
    ledger: &DisclosureLedger,
    report: &str,
    input: &PartyRecords,
    transcript: Option<&[u8]>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let rejects = write_rejects(dir, input)?;
    let mut links = AtomicFile::create(&dir.join(LINKS_FILE))?;
    write_links(&mut links, outcome)
        .with_context(|| format!("cannot write {}", dir.join(LINKS_FILE).display()))?;
    let mut ledger_file = AtomicFile::create(&dir.join(LEDGER_FILE))?;
    blindlink_party::write_ledger_json(ledger, input, &mut ledger_file)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(ledger_file.write_all(b"\n")?))
        .with_context(|| format!("cannot write {}", dir.join(LEDGER_FILE).display()))?;
    let mut report_file = AtomicFile::create(&dir.join(REPORT_FILE))?;
    report_file
        .write_all(report.as_bytes())
        .with_context(|| format!("cannot write {}", dir.join(REPORT_FILE).display()))?;
    let transcript_file = match transcript {
        Some(bytes) => {
            let mut file = AtomicFile::create(&dir.join(TRANSCRIPT_FILE))?;
            file.write_all(bytes)
                .with_context(|| format!("cannot write {}", dir.join(TRANSCRIPT_FILE).display()))?;
            Some(file)
        }
        None => None,
    };
    let validation = write_validation(dir, outcome)?;
    links.commit()?;
    if let Some((model, explanations)) = validation {
        model.commit()?;
        explanations.commit()?;
    }
    ledger_file.commit()?;
    if let Some(file) = transcript_file {
        file.commit()?;
    }
    if let Some(rejects) = rejects {
        rejects.commit()?;
    }
    report_file.commit()
}

/// `rejects.csv` (staged, not committed) under `invalid_rows = "reject"`: file, line, field,
/// reason, then the row as read under the input's header.
fn write_rejects(dir: &Path, input: &PartyRecords) -> anyhow::Result<Option<AtomicFile>> {
    let Some(rejects) = &input.rejects else {
        return Ok(None);
    };
    let path = dir.join(REJECTS_FILE);
    let fail = || format!("cannot write {}", path.display());
    let mut csv = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(AtomicFile::create(&path)?);
    let mut head = vec!["file", "line", "field", "reason"];
    head.extend(rejects.header.iter().map(String::as_str));
    csv.write_record(&head).with_context(fail)?;
    for row in &rejects.rows {
        let line = row.line.to_string();
        let mut fields = vec![rejects.file.as_str(), &line, &row.field, &row.reason];
        fields.extend(row.values.iter().map(String::as_str));
        csv.write_record(&fields).with_context(fail)?;
    }
    let file = csv
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {}", fail(), e.error()))?;
    Ok(Some(file))
}

/// `model.json` and `explanations.csv` (staged, not committed) when the outcome holds
/// validate's model (the comparing side).
fn write_validation(
    dir: &Path,
    outcome: &LinkOutcome,
) -> anyhow::Result<Option<(AtomicFile, AtomicFile)>> {
    let Some(json) = blindlink_party::model_json(outcome)? else {
        return Ok(None);
    };
    let path = dir.join(MODEL_FILE);
    let mut model = AtomicFile::create(&path)?;
    model
        .write_all(json.as_bytes())
        .and_then(|()| model.write_all(b"\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let path = dir.join(EXPLANATIONS_FILE);
    let fail = || format!("cannot write {}", path.display());
    let mut csv = csv::Writer::from_writer(AtomicFile::create(&path)?);
    csv.write_record(blindlink_party::EXPLANATIONS_HEADER)
        .with_context(fail)?;
    for row in blindlink_party::explanation_rows(outcome) {
        csv.write_record(&row).with_context(fail)?;
    }
    let explanations = csv
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {}", fail(), e.error()))?;
    Ok(Some((model, explanations)))
}

fn write_links(out: &mut AtomicFile, outcome: &LinkOutcome) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(blindlink_party::LINKS_HEADER)?;
    for row in blindlink_party::link_rows(outcome) {
        csv.write_record(&row)?;
    }
    csv.flush()?;
    Ok(())
}

pub use blindlink_party::report_text;
