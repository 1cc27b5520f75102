//! `validate`: the exact PSI on the ID key, then every linked pair's fields compared through
//! the grouped PSI cardinality, then Fellegi–Sunter scoring on the comparing side
//! ([`blindlink_matching::fellegi_sunter`]): each pair's per-field counts become its agreement
//! pattern (one level per field of [`ValidateConfig::comparisons`]), m, u and the prior are
//! fitted by EM over the histogram of the session's patterns (or taken as fixed from
//! [`ValidateConfig::em`]), and each pair gets a match weight, a match probability and a flag
//! (probability below the threshold, or a field at a veto level). No CLK and no field filter
//! crosses the wire.
//!
//! ```text
//! comparing side (querier)                    other side (answerer)
//! ── mutual PSI on the ID (see exact) ─────────────────────────────
//! ──── pair_plan, psi_grouped_query 0, 1 ───▶ AwaitPlan → AwaitQuery
//! AwaitReply ◀── psi_grouped_reply 0 ────────
//! ──── psi_grouped_query 2 ─────────────────▶ AwaitQuery
//! AwaitReply ◀── psi_grouped_reply 1 ──────── ... one query and one reply per batch of pairs
//! ──── pair_scores ─────────────────────────▶ AwaitScores → done
//! ```
//!
//! The pairs are compared in batches ([`super::grouped`], "Batches"): the comparing side
//! folds each batch's counts into the pairs' agreement patterns and keeps only those; the
//! model is fitted once every batch is in.
//!
//! Both sides list their linked records in link-id order. The comparing side links every
//! holder of a shared ID ([`blindlink_psi::CascadePlan::share_duplicates_in_round`]), so a
//! wrong-person number two of its records carry is flagged on the wrong one: the pair plan
//! tells the other side how many holders each linked ID has, and the groups are one per
//! (link id, holder, field), labelled by the link id and the holder number.
//!
//! # What each side learns
//! - Both: what the ID PSI reveals (set sizes, intersection size, which own records matched).
//! - The other side learns how many of the comparing side's records hold each linked ID (the
//!   pair plan) and, per pair and field, the comparing side's padded token count (0 when the
//!   field is missing).
//! - The comparing side learns, per pair and field, the number of shared tokens and the other
//!   side's padded token count (0 when the field is missing there); from these it computes
//!   the score.
//! - The other side learns each linked ID's best score and flag (`pair_scores`): the score is
//!   the pair's match probability, quantised to millionths (it was a weighted mean of Dice
//!   coefficients before Fellegi–Sunter scoring; the message is unchanged). The fitted model,
//!   the weights and the patterns stay on the comparing side.

use blindlink_matching::fellegi_sunter::{
    Comparisons, EmSettings, FellegiSunterModel, FieldCounts, FieldObservation, Level,
    PatternHistogram, estimate,
};
use blindlink_psi::{GroupCount, SizeBuckets, TokenGroup};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::common::Context;
use super::exact::{self, AfterCascade};
use super::grouped::{self, BatchAnswerer, BatchQuerier, Batches};
use super::payload;
use super::shell::{Expect, Next, State, Transition};
use super::{ValidateConfig, chunks::split};
use crate::{Disclosure, DisclosureLedger, MessageKind, PairName, ProtocolError};

/// Most of the comparing side's records that may share one linked ID.
pub(crate) const MAX_HOLDERS: u16 = 1024;

/// What validate needs after the ID PSI.
pub(crate) struct Settings {
    comparisons: Comparisons,
    em: EmSettings,
    threshold: f64,
    comparing: bool,
    buckets: SizeBuckets,
    batch_pairs: usize,
}

pub(crate) fn start(
    cx: &mut Context,
    ledger: &mut DisclosureLedger,
    config: &ValidateConfig,
) -> Result<Transition, ProtocolError> {
    let comparing = cx.role == config.comparing;
    let mut plan = exact::plan(cx, std::slice::from_ref(&config.key))?;
    if comparing {
        // The comparing side scores every holder of a shared ID against the peer's record
        // itself, so a wrong-person number that two of its records carry is flagged on the
        // wrong one instead of holding back both.
        plan = plan.share_duplicates_in_round(0);
    }
    let settings = Settings {
        comparisons: config.comparisons.clone(),
        em: config.em.clone(),
        threshold: config.threshold,
        comparing,
        buckets: config.buckets.clone(),
        batch_pairs: config.batch_pairs,
    };
    exact::next_round(cx, ledger, plan, AfterCascade::Validate(Box::new(settings)))
}

/// The name of a pair: its link id and holder number.
fn pair_name(link_id: &[u8; 32], holder: u16) -> Vec<u8> {
    let mut name = link_id.to_vec();
    name.extend_from_slice(&holder.to_be_bytes());
    name
}

/// The pair's name in the ledger.
fn ledger_pair(link_id: &[u8; 32], holder: u16) -> PairName {
    PairName::Link {
        id: *link_id,
        holder,
    }
}

/// Linked records by link id, in link-id order: `(link id, records)`.
fn linked_by_id(cx: &Context) -> Vec<([u8; 32], Vec<usize>)> {
    let mut linked: Vec<([u8; 32], usize)> = cx
        .links
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|l| (l.link_id, i)))
        .collect();
    linked.sort_unstable();
    let mut out: Vec<([u8; 32], Vec<usize>)> = Vec::new();
    for (id, record) in linked {
        match out.last_mut() {
            Some((last, records)) if *last == id => records.push(record),
            _ => out.push((id, vec![record])),
        }
    }
    out
}

/// The groups of the pairs `range` of `pairs` (`(link, holder)` in pair order), every field
/// of each, pair-major; pair `(i, h)` compares `record(i, h)`'s fields.
fn groups(
    cx: &Context,
    links: &[([u8; 32], Vec<usize>)],
    pairs: &[(u32, u16)],
    range: std::ops::Range<usize>,
    record: impl Fn(usize, usize) -> usize,
) -> Result<Vec<TokenGroup>, ProtocolError> {
    let mut groups = Vec::with_capacity(range.len() * cx.data.field_count());
    let mut fields = cx.data.field_reader();
    for &(i, h) in &pairs[range] {
        let i = i as usize;
        let r = record(i, usize::from(h));
        grouped::pair_groups(
            &pair_name(&links[i].0, h),
            &cx.data,
            &mut fields,
            r,
            &mut groups,
        )?;
    }
    Ok(groups)
}

/// Every `(link, holder)` pair in pair order: link by link, its holders in order.
fn pair_list(holders: &[u16]) -> Vec<(u32, u16)> {
    holders
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| (0..n).map(move |h| (u32::try_from(i).unwrap_or(u32::MAX), h)))
        .collect()
}

/// After the ID PSI: the comparing side sends the pair plan and its query; the other side
/// waits for them.
pub(crate) fn after_psi(
    cx: &mut Context,
    _ledger: &mut DisclosureLedger,
    settings: Settings,
) -> Result<Transition, ProtocolError> {
    let links = linked_by_id(cx);
    if !settings.comparing {
        if let Some((id, records)) = links.iter().find(|(_, records)| records.len() > 1) {
            return Err(ProtocolError::Local {
                what: "validate",
                reason: format!(
                    "link {} has {} records on the side that does not compare",
                    hex::encode(id),
                    records.len()
                ),
            });
        }
        return Ok(Transition::to(Vec::new(), AwaitPlan { links, settings }));
    }
    let holders: Vec<u16> = links
        .iter()
        .map(|(_, records)| u16::try_from(records.len()).unwrap_or(u16::MAX))
        .collect();
    if let Some(&h) = holders.iter().find(|&&h| h > MAX_HOLDERS) {
        return Err(ProtocolError::Local {
            what: "validate",
            reason: format!(
                "{h} records share one ID, over the limit of {MAX_HOLDERS} holders per ID"
            ),
        });
    }
    let pairs = pair_list(&holders);
    let fields = settings.comparisons.fields.len();
    let mut batches = BatchQuerier::new(
        Batches::new(pairs.len(), settings.batch_pairs, fields),
        settings.buckets.clone(),
    );
    let mut send = split(MessageKind::PairPlan, 0, payload::encode_holders(&holders));
    send.extend(batches.fill(cx, |cx, range| {
        groups(cx, &links, &pairs, range, |i, h| links[i].1[h])
    })?);
    Ok(Transition::to(
        send,
        AwaitReply {
            batches,
            patterns: Vec::with_capacity(pairs.len() * fields),
            pairs,
            links,
            settings,
        },
    ))
}

/// The other side: waiting for the pair plan.
struct AwaitPlan {
    links: Vec<([u8; 32], Vec<usize>)>,
    settings: Settings,
}

impl State for AwaitPlan {
    fn name(&self) -> &'static str {
        "while waiting for the pair plan"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::PairPlan,
            round: 0,
            limit: 4 + 2 * self.links.len(),
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        _ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self { links, settings } = *self;
        let holders = payload::decode_holders(&bytes, links.len(), MAX_HOLDERS)?;
        drop(bytes);
        let pairs = pair_list(&holders);
        let fields = settings.comparisons.fields.len();
        let mut batches = BatchAnswerer::new(
            Batches::new(pairs.len(), settings.batch_pairs, fields),
            settings.buckets.clone(),
        );
        batches.prepare(cx, |cx, range| {
            groups(cx, &links, &pairs, range, |i, _| links[i].1[0])
        })?;
        Ok(Transition::to(
            Vec::new(),
            AwaitQuery {
                batches,
                pairs,
                links,
                settings,
            },
        ))
    }
}

/// The other side: waiting for the grouped query of the next batch.
struct AwaitQuery {
    batches: BatchAnswerer,
    pairs: Vec<(u32, u16)>,
    links: Vec<([u8; 32], Vec<usize>)>,
    settings: Settings,
}

impl State for AwaitQuery {
    fn name(&self) -> &'static str {
        "while waiting for the grouped query"
    }

    fn expects(&self) -> Expect {
        self.batches.expects()
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self {
            mut batches,
            pairs,
            links,
            settings,
        } = *self;
        batches.prepare(cx, |cx, range| {
            groups(cx, &links, &pairs, range, |i, _| links[i].1[0])
        })?;
        let (send, batch) = batches.answer(&bytes)?;
        drop(bytes);
        let fields = settings.comparisons.fields.len();
        for (n, &(i, h)) in pairs[batch.pairs.clone()].iter().enumerate() {
            let range = n * fields..(n + 1) * fields;
            ledger.record_pair(
                ledger_pair(&links[i as usize].0, h),
                false,
                &batch.own_padded[range.clone()],
                &batch.peer_padded[range],
            );
        }
        if batches.finished() {
            cx.learned.compared_pairs = pairs.len() as u64;
            return Ok(Transition::to(send, AwaitScores { links }));
        }
        Ok(Transition::to(
            send,
            AwaitQuery {
                batches,
                pairs,
                links,
                settings,
            },
        ))
    }
}

/// The comparing side: waiting for the grouped reply of the oldest batch in flight.
struct AwaitReply {
    batches: BatchQuerier,
    /// The agreement pattern of every pair so far, `fields` levels a pair, in pair order.
    patterns: Vec<Level>,
    pairs: Vec<(u32, u16)>,
    links: Vec<([u8; 32], Vec<usize>)>,
    settings: Settings,
}

impl State for AwaitReply {
    fn name(&self) -> &'static str {
        "while waiting for the grouped reply"
    }

    fn expects(&self) -> Expect {
        self.batches.expects()
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self {
            mut batches,
            mut patterns,
            pairs,
            links,
            settings,
        } = *self;
        let batch = batches.handle_reply(&bytes)?;
        drop(bytes);
        let fields = settings.comparisons.fields.len();
        let mut peer_padded = Vec::with_capacity(fields);
        for (n, &(i, h)) in pairs[batch.pairs.clone()].iter().enumerate() {
            let range = n * fields..(n + 1) * fields;
            peer_padded.clear();
            peer_padded.extend(batch.counts[range.clone()].iter().map(|c| c.peer_padded));
            ledger.record_pair(
                ledger_pair(&links[i as usize].0, h),
                true,
                &peer_padded,
                &batch.own_padded[range],
            );
        }
        patterns.extend(batch_patterns(&settings, &batch.counts)?);
        drop(batch);
        if !batches.finished() {
            let send = batches.fill(cx, |cx, range| {
                groups(cx, &links, &pairs, range, |i, h| links[i].1[h])
            })?;
            return Ok(Transition::to(
                send,
                AwaitReply {
                    batches,
                    patterns,
                    pairs,
                    links,
                    settings,
                },
            ));
        }
        let scored = score_pairs(&settings, &patterns, pairs.len())?;
        drop(patterns);
        let mut best: Vec<Option<(u32, bool)>> = vec![None; links.len()];
        let mut record_patterns: Vec<Option<Vec<Level>>> = vec![None; cx.data.len()];
        for (&(i, h), pair) in pairs.iter().zip(scored.pairs) {
            let i = i as usize;
            let score = payload::quantise(pair.probability);
            let record = links[i].1[usize::from(h)];
            if let Some(link) = cx.links.get_mut(record).and_then(Option::as_mut) {
                // As the peer learns it, so both sides' link files agree.
                link.score = Some(payload::dequantise(score));
                link.suspected = pair.flagged;
            }
            record_patterns[record] = Some(pair.pattern);
            // The peer gets one score per pair it knows of: the best holder's.
            if best[i].is_none_or(|(b, _)| score > b) {
                best[i] = Some((score, pair.flagged));
            }
        }
        if let Some(model) = scored.model {
            cx.validation = Some(ValidationOutcome {
                model,
                threshold: settings.threshold,
                patterns: record_patterns,
            });
        }
        cx.learned.compared_pairs = pairs.len() as u64;
        let best: Vec<(u32, bool)> = best.into_iter().flatten().collect();
        Context::learn_both(
            ledger,
            Disclosure::AgreementScores {
                pairs: links.len() as u64,
            },
        );
        cx.learned.pair_scores = links.len() as u64;
        let send = split(
            MessageKind::PairScores,
            0,
            payload::encode_pair_scores(&best),
        );
        Ok(Transition::new(send, Next::AwaitDone))
    }
}

/// What the comparing side's Fellegi–Sunter scoring produced, for the outputs (`model.json`,
/// the `match_probability` and `match_weight` columns, explanations). It never leaves this
/// side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationOutcome {
    /// The fitted (or fixed) model: λ and every field's m/u table.
    pub model: FellegiSunterModel,
    /// The probability threshold below which a pair is flagged.
    pub threshold: f64,
    /// Per local record, in input order (the rows of the outcome): its agreement pattern if
    /// it was compared, else `None`. Score it with [`FellegiSunterModel::score`], explain it
    /// with [`FellegiSunterModel::explain`].
    pub patterns: Vec<Option<Vec<Level>>>,
}

/// One compared pair, scored.
struct ScoredPair {
    pattern: Vec<Level>,
    probability: f64,
    flagged: bool,
}

/// Every pair scored, and the model (none when there was no pair).
struct Scored {
    pairs: Vec<ScoredPair>,
    model: Option<FellegiSunterModel>,
}

/// What the comparing side knows of one field of one pair as an observation: missing when
/// either side's group is empty, else the shared and own counts and the peer's count range
/// from its size bucket (widened to hold `shared`, so hostile padded sizes cannot make
/// impossible counts).
fn observation(count: &GroupCount, buckets: &SizeBuckets) -> FieldObservation {
    if count.own_size == 0 || count.peer_padded == 0 {
        return FieldObservation::Missing;
    }
    let Some((low, high)) = buckets.bounds(count.peer_padded as usize) else {
        return FieldObservation::Missing;
    };
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let shared = count.shared.min(count.own_size);
    let peer_max = clamp(high).max(shared);
    FieldObservation::Counts(FieldCounts {
        shared,
        own: count.own_size,
        peer_min: clamp(low).max(shared).min(peer_max),
        peer_max,
    })
}

/// The agreement patterns of one batch's pairs, `fields` levels a pair: `counts` holds the
/// batch's `pairs × fields` counts in pair order.
fn batch_patterns(settings: &Settings, counts: &[GroupCount]) -> Result<Vec<Level>, ProtocolError> {
    let fields = settings.comparisons.fields.len().max(1);
    let patterns: Vec<Vec<Level>> = counts
        .par_chunks(fields)
        .map(|counts| {
            let observations: Vec<FieldObservation> = counts
                .iter()
                .map(|c| observation(c, &settings.buckets))
                .collect();
            settings.comparisons.pattern(&observations)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ProtocolError::Local {
            what: "validate scoring",
            reason: e.to_string(),
        })?;
    Ok(patterns.concat())
}

/// The comparing side's scoring: the model fitted over the histogram of every pair's pattern
/// (`patterns` holds `pairs` patterns of `fields` levels in pair order), then each pair's
/// probability and flag.
fn score_pairs(
    settings: &Settings,
    patterns: &[Level],
    pairs: usize,
) -> Result<Scored, ProtocolError> {
    let local = |reason: String| ProtocolError::Local {
        what: "validate scoring",
        reason,
    };
    if pairs == 0 {
        return Ok(Scored {
            pairs: Vec::new(),
            model: None,
        });
    }
    let fields = settings.comparisons.fields.len().max(1);
    let mut histogram = PatternHistogram::new();
    for pattern in patterns.chunks(fields) {
        histogram.add(pattern);
    }
    let model = estimate(&settings.comparisons, &histogram, &settings.em)
        .map_err(|e| local(e.to_string()))?;
    // Score each distinct pattern once.
    let mut scores = std::collections::HashMap::with_capacity(histogram.len());
    for (pattern, _) in histogram.iter() {
        let score = model.score(pattern).map_err(|e| local(e.to_string()))?;
        scores.insert(pattern.to_vec(), score);
    }
    let pairs = patterns
        .chunks(fields)
        .map(|pattern| {
            let score = scores
                .get(pattern)
                .copied()
                .ok_or_else(|| local("a pattern was not scored".into()))?;
            Ok(ScoredPair {
                probability: score.probability,
                flagged: score.flagged(settings.threshold),
                pattern: pattern.to_vec(),
            })
        })
        .collect::<Result<_, ProtocolError>>()?;
    Ok(Scored {
        pairs,
        model: Some(model),
    })
}

/// The other side: waiting for the pair scores.
struct AwaitScores {
    links: Vec<([u8; 32], Vec<usize>)>,
}

impl State for AwaitScores {
    fn name(&self) -> &'static str {
        "while waiting for the pair scores"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::PairScores,
            round: 0,
            limit: 4 + self.links.len() * 5,
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let scores = payload::decode_pair_scores(&bytes, self.links.len())?;
        for ((_, records), &(score, flagged)) in self.links.iter().zip(&scores) {
            if let Some(link) = cx.links.get_mut(records[0]).and_then(Option::as_mut) {
                link.score = Some(payload::dequantise(score));
                link.suspected = flagged;
            }
        }
        Context::learn_both(
            ledger,
            Disclosure::AgreementScores {
                pairs: self.links.len() as u64,
            },
        );
        cx.learned.pair_scores = self.links.len() as u64;
        Ok(Transition::new(Vec::new(), Next::Finish))
    }
}
