//! The files a completed session leaves in the output directory: `links.csv` (one row per
//! local record), `ledger.json` (the disclosure ledger) and `report.txt` (a short summary for
//! a person). All three are staged as temporary files first and renamed into place only when
//! all of them are complete, so a failed run leaves the directory as it was.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use blindlink_protocol::{Disclosure, DisclosureLedger, LinkOutcome, Mode};

use crate::output::AtomicFile;

/// File names in the output directory.
pub const LINKS_FILE: &str = "links.csv";
/// The disclosure ledger.
pub const LEDGER_FILE: &str = "ledger.json";
/// The human-readable report.
pub const REPORT_FILE: &str = "report.txt";
/// The audit transcript (`[output] transcript = true`; format: `blindlink_protocol::Transcript`).
pub const TRANSCRIPT_FILE: &str = "transcript.bin";

/// Writes the three output files into `dir` (created if missing), and `transcript.bin` when
/// `transcript` is given.
///
/// # Errors
/// The directory cannot be created or a file cannot be written; then none of the files is
/// replaced.
pub fn write_outputs(
    dir: &Path,
    outcome: &LinkOutcome,
    ledger: &DisclosureLedger,
    report: &str,
    transcript: Option<&[u8]>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut links = AtomicFile::create(&dir.join(LINKS_FILE))?;
    write_links(&mut links, outcome)
        .with_context(|| format!("cannot write {}", dir.join(LINKS_FILE).display()))?;
    let mut ledger_file = AtomicFile::create(&dir.join(LEDGER_FILE))?;
    let json = ledger
        .to_json()
        .map_err(|e| anyhow::anyhow!("cannot serialise the ledger: {e}"))?;
    ledger_file
        .write_all(json.as_bytes())
        .and_then(|()| ledger_file.write_all(b"\n"))
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
    links.commit()?;
    ledger_file.commit()?;
    if let Some(file) = transcript_file {
        file.commit()?;
    }
    report_file.commit()
}

fn write_links(out: &mut AtomicFile, outcome: &LinkOutcome) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record([
        "local_record_id",
        "link_id",
        "mode",
        "score",
        "status",
        "key",
    ])?;
    for row in &outcome.rows {
        let score = row.score.map(|s| format!("{s:.4}")).unwrap_or_default();
        csv.write_record([
            row.local_id.as_str(),
            row.link_id.as_deref().unwrap_or(""),
            row.mode.name(),
            &score,
            row.status.name(),
            row.key.as_deref().unwrap_or(""),
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// The human-readable report: who, what mode, the counts, what was learned, the traffic.
#[must_use]
pub fn report_text(
    party: &str,
    outcome: &LinkOutcome,
    ledger: &DisclosureLedger,
    input_notes: &[String],
) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "blindlink {} session {} ({} as {}) with {}",
        outcome.mode, ledger.session_id, party, outcome.role, ledger.peer
    );
    let c = &outcome.counts;
    let total = outcome.rows.len();
    let _ = writeln!(text, "records: {total}");
    if total > 0 {
        let _ = writeln!(
            text,
            "  linked {}, suspected wrong person {}, ambiguous {}, unmatched {}",
            c.linked, c.suspected_wrong_person, c.ambiguous, c.unmatched
        );
    }
    for (who, learned_by) in [("this side", ledger.role), ("the peer", ledger.role.peer())] {
        let _ = writeln!(text, "{who} learned:");
        // Grouped PSI discloses per compared pair: one line for all of them.
        let (mut shared, mut padded) = (0u64, 0u64);
        for entry in ledger
            .disclosures
            .iter()
            .filter(|e| e.learned_by == learned_by)
        {
            match &entry.disclosure {
                Disclosure::SharedTokenCounts { .. } => shared += 1,
                Disclosure::PaddedTokenCounts { .. } => padded += 1,
                other => {
                    let _ = writeln!(text, "  {}", describe(other));
                }
            }
        }
        if shared > 0 {
            let _ = writeln!(
                text,
                "  per compared pair and field, the number of tokens both records share and the \
                 other side's token count rounded up to its size bucket: {shared} pairs"
            );
        }
        if padded > 0 {
            let _ = writeln!(
                text,
                "  per compared pair and field, the other side's token count rounded up to its \
                 size bucket (not what is shared): {padded} pairs"
            );
        }
    }
    if outcome.mode == Mode::ClkExchange {
        let _ = writeln!(text, "{}", clk_exchange_warning(ledger));
    }
    if let Some(fp) = outcome.learned.expected_false_positives {
        let _ = writeln!(text, "  expected false positives in the count: {fp:.2}");
    }
    let _ = writeln!(
        text,
        "traffic: sent {} messages / {} bytes, received {} messages / {} bytes",
        ledger.sent.total.messages,
        ledger.sent.total.bytes,
        ledger.received.total.messages,
        ledger.received.total.bytes
    );
    for note in input_notes {
        let _ = writeln!(text, "{note}");
    }
    text
}

/// What `clk-exchange` gave away, in words: the receiver of the CLKs holds the linkage key.
fn clk_exchange_warning(ledger: &DisclosureLedger) -> String {
    let received = ledger
        .disclosures
        .iter()
        .any(|e| e.learned_by == ledger.role && matches!(e.disclosure, Disclosure::Clks { .. }));
    if received {
        "warning: clk-exchange: this side received the peer's CLKs and holds the linkage key, so \
         it can decode them (test any guessed identifier against them); the peer accepted that \
         with [linkage] reveal_decodable_encodings = true"
            .to_owned()
    } else {
        "warning: clk-exchange: the peer received this side's CLKs and holds the linkage key, so \
         it can decode them (test any guessed identifier against them); this side accepted that \
         with [linkage] reveal_decodable_encodings = true"
            .to_owned()
    }
}

fn describe(disclosure: &Disclosure) -> String {
    match disclosure {
        Disclosure::Schema { fields } => format!("the schema's field names and types ({fields})"),
        Disclosure::SetSize { key, size } => format!("set size for key {key}: {size}"),
        Disclosure::IntersectionSize { key, size } => {
            format!("intersection size for key {key}: {size}")
        }
        Disclosure::MatchedRecords { key, count } => {
            format!("which of its own records matched on key {key}: {count}")
        }
        Disclosure::AgreementScores { pairs } => {
            format!("agreement scores of linked pairs: {pairs}")
        }
        Disclosure::Clks { count } => {
            format!("CLKs of the other side, which the receiver can decode: {count}")
        }
        Disclosure::CandidateTokens { records } => format!(
            "which shared blocking tokens each candidate record of the other side holds: \
             {records} records"
        ),
        Disclosure::SharedTokenCounts { pair, .. } => {
            format!("shared token counts of pair {pair}")
        }
        Disclosure::PaddedTokenCounts { pair, .. } => {
            format!("padded token counts of pair {pair}")
        }
    }
}
