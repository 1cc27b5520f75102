//! A party's outputs as values: the rows of `links.csv`, the ledger's JSON with this party's
//! input counts, the text of `report.txt`, and in `validate` on the comparing side the
//! fitted model (`model.json`) and the explanation of every flagged pair
//! (`explanations.csv`). The caller writes them (atomically, all or none); this module only
//! says what they hold.

use std::fmt::Write as _;

use blindlink_protocol::fellegi_sunter::PairExplanation;
use blindlink_protocol::{
    Disclosure, DisclosureLedger, LinkCounts, LinkOutcome, LinkStatus, Mode, ValidationOutcome,
};

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
/// `validate`, comparing side: the fitted Fellegi–Sunter model (λ, every field's m/u table).
pub const MODEL_FILE: &str = "model.json";
/// `validate`, comparing side: every flagged pair's waterfall in numbers.
pub const EXPLANATIONS_FILE: &str = "explanations.csv";

/// The header row of `links.csv`.
pub const LINKS_HEADER: [&str; 8] = [
    "local_record_id",
    "link_id",
    "mode",
    "score",
    "status",
    "key",
    "match_probability",
    "match_weight",
];

/// The data rows of `links.csv`, in the outcome's (the input's) order: local id, link id
/// (empty if none), mode, score with four decimals (empty if none), status, the match key that
/// linked it (empty if none), and in `validate` the match probability (six decimals) and match
/// weight (bits, four decimals).
///
/// `score` is validate's match probability (as both sides hold it, in millionths) or fuzzy's
/// and clk-exchange's Dice. `match_probability` and `match_weight` are empty outside
/// `validate`; on validate's side that does not compare, the probability is the one received
/// and the weight is empty (the model stays with the comparing side).
///
/// # Example
/// ```
/// use blindlink_protocol::{LinkCounts, LinkOutcome, LinkRow, LinkStatus, Mode, Role};
/// let row = LinkRow { local_id: "r1".into(), mode: Mode::Validate,
///     status: LinkStatus::Linked, score: Some(0.98765), key: Some("my_number".into()),
///     link_id: Some("ab12".into()) };
/// let outcome = LinkOutcome { mode: Mode::Validate, role: Role::Responder, rows: vec![row].into(),
///     counts: LinkCounts::default(), learned: Default::default(), validation: None };
/// let rows: Vec<_> = blindlink_party::link_rows(&outcome).collect();
/// assert_eq!(rows[0], ["r1", "ab12", "validate", "0.9877", "linked", "my_number", "0.987650", ""]);
/// ```
pub fn link_rows(outcome: &LinkOutcome) -> impl Iterator<Item = [String; 8]> + '_ {
    outcome.rows.iter_rows().enumerate().map(|(i, row)| {
        let (probability, weight) = match (&outcome.validation, row.mode) {
            (Some(validation), _) => match pair_score(validation, i) {
                Some((p, w)) => (format!("{p:.6}"), format!("{w:.4}")),
                None => (String::new(), String::new()),
            },
            (None, Mode::Validate) => (
                row.score.map(|s| format!("{s:.6}")).unwrap_or_default(),
                String::new(),
            ),
            (None, _) => (String::new(), String::new()),
        };
        [
            row.local_id,
            row.link_id.unwrap_or_default(),
            row.mode.name().to_owned(),
            row.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
            row.status.name().to_owned(),
            row.key.unwrap_or_default(),
            probability,
            weight,
        ]
    })
}

/// Record `row`'s match probability and weight, if it was compared.
fn pair_score(validation: &ValidationOutcome, row: usize) -> Option<(f64, f64)> {
    let pattern = validation.patterns.get(row)?.as_ref()?;
    let score = validation.model.score(pattern).ok()?;
    Some((score.probability, score.match_weight))
}

/// The explanation of record `row`'s pair, if it was compared.
fn explanation(validation: &ValidationOutcome, row: usize) -> Option<PairExplanation> {
    let pattern = validation.patterns.get(row)?.as_ref()?;
    validation.model.explain(pattern).ok()
}

/// The header row of `explanations.csv`.
pub const EXPLANATIONS_HEADER: [&str; 9] = [
    "local_record_id",
    "link_id",
    "term",
    "level",
    "m",
    "u",
    "weight",
    "veto",
    "match_probability",
];

/// The rows of `explanations.csv`: for every flagged pair (in input order), its waterfall in
/// numbers: a `prior` row (`log2(λ/(1-λ))`), one row per field (its level, m, u, weight in
/// bits and whether the level vetoes; a missing field has level `missing` and weight 0), and
/// a `total` row (the match weight and probability). Empty outside validate's comparing side.
///
/// # Example
/// ```
/// use blindlink_protocol::fellegi_sunter::*;
/// use blindlink_protocol::{LinkCounts, LinkOutcome, LinkRow, LinkStatus, Mode, Role, ValidationOutcome};
/// let comparisons = Comparisons::new(vec![FieldComparison::for_token_kind("dob", TokenKind::Exact)])?;
/// let model = FellegiSunterModel::fixed(&comparisons, 0.5, &[(vec![0.99, 0.01], vec![0.01, 0.99])])?;
/// let row = LinkRow { local_id: "r1".into(), mode: Mode::Validate,
///     status: LinkStatus::SuspectedWrongPerson, score: Some(0.01), key: None, link_id: Some("ab".into()) };
/// let validation = ValidationOutcome { model, threshold: 0.5, patterns: vec![Some(vec![Level::at(1)])] };
/// let outcome = LinkOutcome { mode: Mode::Validate, role: Role::Initiator, rows: vec![row].into(),
///     counts: LinkCounts::default(), learned: Default::default(), validation: Some(validation) };
/// let rows = blindlink_party::explanation_rows(&outcome);
/// assert_eq!(rows[1], ["r1", "ab", "dob", "different", "0.010000", "0.990000", "-6.6294", "true", ""]);
/// assert_eq!(rows[2], ["r1", "ab", "total", "", "", "", "-6.6294", "", "0.010000"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn explanation_rows(outcome: &LinkOutcome) -> Vec<[String; 9]> {
    let Some(validation) = &outcome.validation else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..outcome.rows.len() {
        if outcome.rows.status(i) != Some(LinkStatus::SuspectedWrongPerson) {
            continue;
        }
        let (Some(why), Some(row)) = (explanation(validation, i), outcome.rows.get(i)) else {
            continue;
        };
        let id = row.local_id.clone();
        let link = row.link_id.clone().unwrap_or_default();
        let number = |x: Option<f64>| x.map(|x| format!("{x:.6}")).unwrap_or_default();
        let term = |term: &str, level: &str, m, u, weight: f64, veto: &str, p: &str| {
            [
                id.clone(),
                link.clone(),
                term.to_owned(),
                level.to_owned(),
                number(m),
                number(u),
                format!("{weight:.4}"),
                veto.to_owned(),
                p.to_owned(),
            ]
        };
        out.push(term("prior", "", None, None, why.prior_weight, "", ""));
        for f in &why.fields {
            let veto = if f.veto { "true" } else { "false" };
            out.push(term(&f.field, &f.level, f.m, f.u, f.weight, veto, ""));
        }
        let p = format!("{:.6}", why.probability);
        out.push(term("total", "", None, None, why.match_weight, "", &p));
    }
    out
}

/// `model.json`'s text (validate's comparing side), or `None` in any other mode or side.
///
/// # Errors
/// The model cannot be written as JSON (a number that is not finite).
pub fn model_json(outcome: &LinkOutcome) -> Result<Option<String>, PartyError> {
    outcome
        .validation
        .as_ref()
        .map(|v| v.model.to_json())
        .transpose()
        .map_err(|e| PartyError::Ledger(e.to_string()))
}

/// The lines of report.txt about validate's scoring on the comparing side: the model, the fit
/// and why each flagged pair is flagged.
fn validation_text(text: &mut String, outcome: &LinkOutcome, validation: &ValidationOutcome) {
    let model = &validation.model;
    let _ = writeln!(
        text,
        "fellegi-sunter model ({MODEL_FILE}): prior match probability {:.6}, {} pairs in {} \
         agreement patterns, {} EM iterations, converged {}; flagged when the match \
         probability is below {} or a field is at a veto level",
        model.lambda,
        model.fit.pairs,
        model.fit.patterns,
        model.fit.iterations,
        model.fit.converged,
        validation.threshold
    );
    for warning in &model.fit.warnings {
        let _ = writeln!(text, "  fit warning: {warning}");
    }
    let flagged: Vec<(usize, PairExplanation)> = (0..outcome.rows.len())
        .filter(|&i| outcome.rows.status(i) == Some(LinkStatus::SuspectedWrongPerson))
        .filter_map(|i| Some((i, explanation(validation, i)?)))
        .collect();
    let _ = writeln!(
        text,
        "flagged pairs ({}; each field's level and weight in {EXPLANATIONS_FILE}):",
        flagged.len()
    );
    for (i, why) in &flagged {
        let Some(row) = outcome.rows.get(*i) else {
            continue;
        };
        let _ = writeln!(
            text,
            "  {} (link {}): match probability {:.6}, weight {:.2}: {}",
            row.local_id,
            row.link_id.as_deref().unwrap_or("-"),
            why.probability,
            why.match_weight,
            why.reasons(validation.threshold).join("; ")
        );
    }
}

/// The ledger's JSON (pretty-printed) with an `input` member: rows read, rows rejected
/// (withheld), era dates read leniently. These are this party's own facts; the peer is never
/// told them.
///
/// # Errors
/// The ledger cannot be serialised.
pub fn ledger_json(ledger: &DisclosureLedger, input: &PartyRecords) -> Result<String, PartyError> {
    let mut bytes = Vec::new();
    write_ledger_json(ledger, input, &mut bytes)?;
    String::from_utf8(bytes).map_err(|e| PartyError::Ledger(e.to_string()))
}

/// Writes [`ledger_json`]'s text to `out` (no final newline), one disclosure at a time: a
/// validate or fuzzy session has a disclosure per compared pair, and the whole ledger as one
/// JSON value cost about 3 KB per pair at the session's end. The bytes are the same: every
/// object's members in sorted order (as `serde_json::Value` prints them), two spaces of indent.
///
/// # Errors
/// The ledger cannot be serialised, or `out` fails.
pub fn write_ledger_json(
    ledger: &DisclosureLedger,
    input: &PartyRecords,
    out: &mut impl std::io::Write,
) -> Result<(), PartyError> {
    let fail = |e: serde_json::Error| PartyError::Ledger(e.to_string());
    let io = |e: std::io::Error| PartyError::Ledger(e.to_string());
    // Everything but the disclosures, as one small value (members sorted); the disclosures,
    // the first member in sorted order, are written in its place entry by entry.
    let mut value = serde_json::json!({
        "session_id": ledger.session_id,
        "role": ledger.role,
        "mode": ledger.mode,
        "peer": ledger.peer,
        "sent": ledger.sent,
        "received": ledger.received,
        "disclosures": [],
        "input": {
            "rows_read": input.rows_read,
            "rows_rejected": input.rejects.as_ref().map_or(0, |r| r.rows.len()),
            "era_dates_read_leniently": input.era_dates_read_leniently,
        },
    });
    let head = serde_json::to_string_pretty(&value).map_err(fail)?;
    const EMPTY: &str = "{\n  \"disclosures\": [],\n";
    let rest = head
        .strip_prefix(EMPTY)
        .ok_or_else(|| PartyError::Ledger("ledger members out of order".to_owned()))?;
    if ledger.disclosure_count() == 0 {
        out.write_all(EMPTY.as_bytes()).map_err(io)?;
    } else {
        out.write_all(b"{\n  \"disclosures\": [").map_err(io)?;
        for (i, entry) in ledger.disclosures().enumerate() {
            value = serde_json::to_value(&entry).map_err(fail)?;
            let text = serde_json::to_string_pretty(&value).map_err(fail)?;
            out.write_all(if i == 0 { b"\n" } else { b",\n" })
                .map_err(io)?;
            // JSON strings hold no raw newline, so every line is indented as a whole.
            for (j, line) in text.split('\n').enumerate() {
                if j > 0 {
                    out.write_all(b"\n").map_err(io)?;
                }
                out.write_all(b"    ").map_err(io)?;
                out.write_all(line.as_bytes()).map_err(io)?;
            }
        }
        out.write_all(b"\n  ],\n").map_err(io)?;
    }
    out.write_all(rest.as_bytes()).map_err(io)
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
        for entry in ledger.disclosures().filter(|e| e.learned_by == learned_by) {
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
    if let Some(validation) = &outcome.validation {
        validation_text(&mut text, outcome, validation);
    }
    for note in input_notes {
        let _ = writeln!(text, "{note}");
    }
    text
}

/// What `clk-exchange` gave away, in words: the receiver of the CLKs holds the linkage key.
fn clk_exchange_warning(ledger: &DisclosureLedger) -> String {
    let received = ledger
        .disclosures()
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
            format!(
                "one match probability and flag per linked pair (validate's score; the model and \
                 the per-field weights stay with the comparing side): {pairs}"
            )
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
            rows: Vec::new().into(),
            counts: LinkCounts::default(),
            learned: Learned::default(),
            validation: None,
        };
        let text = report_text("me", &outcome, &ledger, &[]);
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with("traffic"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The ledger as it was written before it was streamed: the whole ledger as one JSON value
    /// with `input` added. The streamed text must be the same bytes.
    fn ledger_json_as_one_value(ledger: &DisclosureLedger, input: &PartyRecords) -> String {
        let mut value: serde_json::Value =
            serde_json::from_str(&ledger.to_json().unwrap()).unwrap();
        value.as_object_mut().unwrap().insert(
            "input".to_owned(),
            serde_json::json!({
                "rows_read": input.rows_read,
                "rows_rejected": input.rejects.as_ref().map_or(0, |r| r.rows.len()),
                "era_dates_read_leniently": input.era_dates_read_leniently,
            }),
        );
        serde_json::to_string_pretty(&value).unwrap()
    }

    #[test]
    fn the_streamed_ledger_is_the_ledger_as_one_value() {
        let check = |disclosures: Vec<(bool, Disclosure)>| {
            let mut ledger = DisclosureLedger::new(
                SessionId::from_bytes([7; 16]),
                Role::Responder,
                Mode::Validate,
                "insurer \"a\"\nb",
            );
            ledger.record_sent(blindlink_protocol::MessageKind::PsiGroupedReply, 1234);
            ledger.record_received(blindlink_protocol::MessageKind::PsiGroupedQuery, 99);
            for (learned, disclosure) in disclosures {
                if learned {
                    ledger.record_learned(disclosure);
                } else {
                    ledger.record_revealed(disclosure);
                }
            }
            let input = PartyRecords {
                rows_read: 12,
                era_dates_read_leniently: 3,
                ..PartyRecords::default()
            };
            let streamed = ledger_json(&ledger, &input).unwrap();
            assert_eq!(streamed, ledger_json_as_one_value(&ledger, &input));
            let value: serde_json::Value = serde_json::from_str(&streamed).unwrap();
            assert_eq!(value["input"]["rows_read"], 12);
        };
        check(Vec::new());
        check(vec![(
            true,
            Disclosure::SetSize {
                key: "my_number".into(),
                size: 5,
            },
        )]);
        check(vec![
            (false, Disclosure::Schema { fields: 5 }),
            (
                true,
                Disclosure::SharedTokenCounts {
                    pair: "ab#0".into(),
                    peer_padded: vec![2, 0, 12],
                },
            ),
            (
                false,
                Disclosure::PaddedTokenCounts {
                    pair: "ab#1\u{3042}".into(),
                    padded: Vec::new(),
                },
            ),
            (true, Disclosure::AgreementScores { pairs: 2 }),
        ]);
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
