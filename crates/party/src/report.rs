//! A party's outputs as values: the rows of `links.csv`, the ledger's JSON with this party's
//! input counts, and the text of `report.txt`. The caller writes them (atomically, all or
//! none); this module only says what they hold.

use std::fmt::Write as _;

use blindlink_protocol::{Disclosure, DisclosureLedger, LinkCounts, LinkOutcome, Mode};

use crate::PartyError;
use crate::records::PartyRecords;

/// The links, one row per local record (`links.csv`).
pub const LINKS_FILE: &str = "links.csv";
/// The disclosure ledger.
pub const LEDGER_FILE: &str = "ledger.json";
/// The human-readable report.
pub const REPORT_FILE: &str = "report.txt";
/// The rows withheld under `invalid_rows = "reject"`.
pub const REJECTS_FILE: &str = "rejects.csv";
/// The audit transcript (`[output] transcript = true`; format: `blindlink_protocol::Transcript`).
pub const TRANSCRIPT_FILE: &str = "transcript.bin";

/// The header row of `links.csv`.
pub const LINKS_HEADER: [&str; 6] = [
    "local_record_id",
    "link_id",
    "mode",
    "score",
    "status",
    "key",
];

/// The data rows of `links.csv`, in the outcome's (the input's) order: local id, link id
/// (empty if none), mode, score with four decimals (empty if none), status, the match key that
/// linked it (empty if none).
///
/// # Example
/// ```
/// use blindlink_protocol::{LinkCounts, LinkOutcome, LinkRow, LinkStatus, Mode, Role};
/// let row = LinkRow { local_id: "r1".into(), mode: Mode::Validate,
///     status: LinkStatus::Linked, score: Some(0.98765), key: Some("my_number".into()),
///     link_id: Some("ab12".into()) };
/// let outcome = LinkOutcome { mode: Mode::Validate, role: Role::Initiator, rows: vec![row],
///     counts: LinkCounts::default(), learned: Default::default() };
/// let rows: Vec<_> = blindlink_party::link_rows(&outcome).collect();
/// assert_eq!(rows[0], ["r1", "ab12", "validate", "0.9877", "linked", "my_number"]);
/// ```
pub fn link_rows(outcome: &LinkOutcome) -> impl Iterator<Item = [String; 6]> + '_ {
    outcome.rows.iter().map(|row| {
        [
            row.local_id.clone(),
            row.link_id.clone().unwrap_or_default(),
            row.mode.name().to_owned(),
            row.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
            row.status.name().to_owned(),
            row.key.clone().unwrap_or_default(),
        ]
    })
}

/// The ledger's JSON (pretty-printed) with an `input` member: rows read, rows rejected
/// (withheld), era dates read leniently. These are this party's own facts; the peer is never
/// told them.
///
/// # Errors
/// The ledger cannot be serialised.
pub fn ledger_json(ledger: &DisclosureLedger, input: &PartyRecords) -> Result<String, PartyError> {
    let fail = |e: serde_json::Error| PartyError::Ledger(e.to_string());
    let json = ledger
        .to_json()
        .map_err(|e| PartyError::Ledger(e.to_string()))?;
    let mut value: serde_json::Value = serde_json::from_str(&json).map_err(fail)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "input".to_owned(),
            serde_json::json!({
                "rows_read": input.rows_read,
                "rows_rejected": input.rejects.as_ref().map_or(0, |r| r.rows.len()),
                "era_dates_read_leniently": input.era_dates_read_leniently,
            }),
        );
    }
    serde_json::to_string_pretty(&value).map_err(fail)
}

/// The rows of an outcome by status, as every summary writes them: `linked 3, suspected wrong
/// person 1, ambiguous 0, unmatched 2`.
#[must_use]
pub fn counts_line(counts: &LinkCounts) -> String {
    format!(
        "linked {}, suspected wrong person {}, ambiguous {}, unmatched {}",
        counts.linked, counts.suspected_wrong_person, counts.ambiguous, counts.unmatched
    )
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
    let total = outcome.rows.len();
    let _ = writeln!(text, "records: {total}");
    if total > 0 {
        let _ = writeln!(text, "  {}", counts_line(&outcome.counts));
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
        // Whose token counts the learner learned (the other side's) and its own, named from
        // this side.
        let (counted, own) = if learned_by == ledger.role {
            ("the peer's", "this side's")
        } else {
            ("this side's", "the peer's")
        };
        if shared > 0 {
            let _ = writeln!(
                text,
                "  per compared pair and field, the number of tokens both records share (so also \
                 whether {counted} field is present) and {counted} token count rounded up to its \
                 size bucket: {shared} pairs"
            );
        }
        if padded > 0 {
            let plan = match outcome.mode {
                Mode::Fuzzy => format!("how many pairs each of {own} candidate records is in"),
                _ => format!("how many of {counted} records hold each linked number"),
            };
            let _ = writeln!(
                text,
                "  the pair plan ({plan}) and, per compared pair and field, {counted} token count \
                 rounded up to its size bucket (not what is shared): {padded} pairs"
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

#[cfg(test)]
mod tests {
    use blindlink_protocol::{Learned, Role, SessionId};

    use super::*;

    /// The "learned" part of the report of `role` in `mode` after one compared pair, where the
    /// initiator compares.
    fn learned(mode: Mode, role: Role) -> String {
        let mut ledger = DisclosureLedger::new(SessionId::from_bytes([1; 16]), role, mode, "peer");
        let shared = Disclosure::SharedTokenCounts {
            pair: "p#0".into(),
            peer_padded: vec![2, 0],
        };
        let padded = Disclosure::PaddedTokenCounts {
            pair: "p#0".into(),
            padded: vec![3, 3],
        };
        if role == Role::Initiator {
            ledger.record_learned(shared);
            ledger.record_revealed(padded);
        } else {
            ledger.record_learned(padded);
            ledger.record_revealed(shared);
        }
        let outcome = LinkOutcome {
            mode,
            role,
            rows: Vec::new(),
            counts: LinkCounts::default(),
            learned: Learned::default(),
        };
        let text = report_text("me", &outcome, &ledger, &[]);
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with("traffic"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_learned_lines_name_whose_counts_the_presence_and_the_pair_plan() {
        let shared = |whose: &str| {
            format!(
                "  per compared pair and field, the number of tokens both records share (so also \
                 whether {whose} field is present) and {whose} token count rounded up to its size \
                 bucket: 1 pairs"
            )
        };
        let padded = |plan: &str, whose: &str| {
            format!(
                "  the pair plan ({plan}) and, per compared pair and field, {whose} token count \
                 rounded up to its size bucket (not what is shared): 1 pairs"
            )
        };
        let validate_plan =
            |whose: &str| format!("how many of {whose} records hold each linked number");
        let fuzzy_plan =
            |whose: &str| format!("how many pairs each of {whose} candidate records is in");
        let cases = [
            (
                Mode::Validate,
                Role::Initiator,
                [
                    shared("the peer's"),
                    padded(&validate_plan("this side's"), "this side's"),
                ],
            ),
            (
                Mode::Validate,
                Role::Responder,
                [
                    padded(&validate_plan("the peer's"), "the peer's"),
                    shared("this side's"),
                ],
            ),
            (
                Mode::Fuzzy,
                Role::Initiator,
                [
                    shared("the peer's"),
                    padded(&fuzzy_plan("the peer's"), "this side's"),
                ],
            ),
            (
                Mode::Fuzzy,
                Role::Responder,
                [
                    padded(&fuzzy_plan("this side's"), "the peer's"),
                    shared("this side's"),
                ],
            ),
        ];
        let wrong: Vec<String> = cases
            .into_iter()
            .filter_map(|(mode, role, [this_side, peer])| {
                let expected =
                    format!("this side learned:\n{this_side}\nthe peer learned:\n{peer}");
                let got = learned(mode, role);
                (got != expected).then(|| format!("{mode} {role}:\n{got}\nexpected\n{expected}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }
}
