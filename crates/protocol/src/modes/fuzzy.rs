//! `fuzzy`: private MinHash blocking, then the candidate pairs' fields compared through the
//! grouped PSI cardinality, then the one-to-one solver. The CLK stays on its side: only keyed
//! MinHash band tokens go through the mutual PSI, and no CLK or field filter crosses the wire.
//!
//! ```text
//! comparing side (querier)                    other side (answerer)
//! ── mutual PSI on the band tokens and exact tokens ──────────────
//! AwaitCandidates ◀── candidate_tokens ──────
//! ──── pair_plan, psi_grouped_query 0, 1 ───▶ AwaitPlan → AwaitQuery
//! AwaitReply ◀── psi_grouped_reply 0 ────────
//! ──── psi_grouped_query 2 ─────────────────▶ AwaitQuery
//! AwaitReply ◀── psi_grouped_reply 1 ──────── ... one query and one reply per batch of pairs
//! ──── link_ids ────────────────────────────▶ AwaitLinkIds → done
//! ```
//!
//! The candidate pairs are compared in batches ([`super::grouped`], "Batches"): the querier
//! scores each batch's pairs as its reply arrives and keeps only those above the threshold.
//!
//! # Blocking
//! Each side computes its records' band tokens locally with the matching crate's keyed
//! [`MinHasher`] (key derived from the linkage secret; [`fuzzy_blocking_tokens`]). By default
//! ([`BlockingInput::FieldPairs`]) each pair of present fields gets its own bands over the two
//! fields' tagged tokens, so a pair agreeing on any two fields is a candidate however
//! corrupted the others (FEBRL4: 0.987 pairs completeness at about one pair per record,
//! against 0.797 for one MinHash over all field tokens; papers/benchmarks.md, "Fuzzy:
//! field-pair blocking"). [`BlockingInput::FieldTokens`] takes the MinHash over all field
//! tokens, [`BlockingInput::ClkBits`] over the CLK's set bits.
//!
//! # The exact stage
//! With [`FuzzyConfig::exact_stage`] each record also puts a keyed digest of its whole record
//! ([`MinHasher::set_token`]) through the same PSI. The querier links a candidate and an own
//! record that are the only holders of a matched exact token with score 1 and compares neither
//! further (the solver would have linked them first). Only the querier acts on it: the
//! answerer just follows the plan.
//!
//! # Naming the candidate pairs
//! After the band-token PSI both sides hold the matched tokens as link ids, numbered in their
//! sorted order (the same numbers on both sides). The answerer numbers its candidate records
//! (those holding a matched token) in a random order and sends, per candidate, the numbers of
//! the matched tokens it holds (`candidate_tokens`). The querier pairs each candidate with
//! its own records that hold one of those tokens (skipping a token more than 256 of its
//! records hold, which carries little information), keeps per candidate the records sharing
//! the most tokens with it (at most [`FuzzyConfig::max_pairs`], none sharing fewer than half
//! as many as the best), and sends the candidate number of every pair, ascending
//! (`pair_plan`); the answerer refuses a plan with a candidate in more pairs than that. A pair is then named by the candidate number `b` and its
//! number `k` among `b`'s pairs, which both sides know; its groups are labelled by `(b, k)`
//! and the field ([`super::grouped`]).
//!
//! # What each side learns
//! - Both: what the band-token PSI reveals (set sizes, intersection size, which own tokens
//!   matched, so also which own records have an exact twin on the other side).
//! - The querier learns which matched tokens each of the answerer's candidate records holds
//!   (not which record: the numbering is random), then per pair and field the shared-token
//!   count (and the field's presence) and the answerer's padded token count.
//! - The answerer learns how many of the querier's records each of its candidates is paired
//!   with (the pair plan) and, per pair and field, the querier's padded token count.
//! - Both learn the number of links; the answerer learns which of its candidates were linked,
//!   with the link id and score of each.

use std::collections::{HashMap, HashSet};

use blindlink_matching::{Candidate, ClkMinHasher, MinHashParameters, MinHasher};
use blindlink_psi::{MatchKeyName, MutualOutcome, SizeBuckets, TokenGroup};
use rand_core::Rng;
use rayon::prelude::*;

use super::chunks::split;
use super::common::{Context, Mutual, MutualStep, local_psi};
use super::grouped::{self, BatchAnswerer, BatchQuerier, Batches};
use super::linking::{self, AwaitLinkIds};
use super::payload;
use super::score::{FieldScoring, ValidateScorer};
use super::shell::{Expect, Next, State, Transition};
use super::{FuzzyConfig, MAX_RECORDS, PartyData};
use crate::{Disclosure, DisclosureLedger, MessageKind, PairName, ProtocolError};

/// The match-key name of the band tokens (a domain tag for hashing them to the group).
const BAND_KEY: &str = "lsh-band";
/// A band token that more of the querier's records share than this is not used to pair
/// records: it is made of bits most CLKs set and would make the comparison quadratic; pairs
/// that are really alike share another, rarer band token.
const MAX_TOKEN_GROUP: usize = 256;
/// An element is common (left out of the MinHash) only if more than this many records hold
/// it, whatever the share: in a small data set a share says little.
const MIN_COMMON_RECORDS: usize = 16;

struct Settings {
    fields: Vec<FieldScoring>,
    threshold: f64,
    comparing: bool,
    buckets: SizeBuckets,
    batch_pairs: usize,
    max_pairs: usize,
    /// Most matched tokens one record can hold (its band tokens and its exact token).
    max_tokens: usize,
}

/// What a record's MinHash blocking is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingInput {
    /// The set of the record's field tokens ([`PartyRecord::fields`](super::PartyRecord::fields), each tagged with its
    /// field's number): Jaccard on what the pairs are then scored on.
    FieldTokens,
    /// The set bit positions of the record-level CLK ([`PartyRecord::clk`](super::PartyRecord::clk)).
    ClkBits,
    /// Per pair of fields (both present), the set of the two fields' tagged tokens:
    /// [`FuzzyConfig::lsh`]`.bands` bands per field pair, so a record has up to
    /// `n (n - 1) / 2 × bands` band tokens. Like several blocking rules OR-ed together: a
    /// pair that agrees on any two fields becomes a candidate, however corrupted the others.
    FieldPairs,
}

impl BlockingInput {
    /// The name in the handshake parameters (`fuzzy.blocking`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::FieldTokens => "field-tokens",
            Self::ClkBits => "clk-bits",
            Self::FieldPairs => "field-pairs",
        }
    }

    /// The input named `name` in the handshake parameters.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::FieldTokens, Self::ClkBits, Self::FieldPairs]
            .into_iter()
            .find(|input| input.name() == name)
    }

    /// The band tokens per record (at most) with `bands` bands over `fields` fields.
    #[must_use]
    pub const fn tokens_per_record(self, bands: usize, fields: usize) -> usize {
        match self {
            Self::FieldTokens | Self::ClkBits => bands,
            Self::FieldPairs => bands.saturating_mul(field_pairs(fields)),
        }
    }
}

/// The pairs of `fields` fields: `n (n - 1) / 2`.
const fn field_pairs(fields: usize) -> usize {
    fields.saturating_mul(fields.saturating_sub(1)) / 2
}

/// Each record's fuzzy blocking tokens under `config`, in the order of `data`: what
/// fuzzy puts through the mutual PSI (the same function the session runs; also for measuring a
/// blocking shape locally, e.g. its pairs completeness).
///
/// # Errors
/// [`ProtocolError::Local`] when the config has no blocking key or an invalid MinHash shape.
///
/// # Security
/// The tokens are keyed digests of personal data; they must go through the PSI only.
pub fn fuzzy_blocking_tokens(
    config: &FuzzyConfig,
    data: &PartyData,
) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
    let Some(key) = &config.blocking_key else {
        return Err(ProtocolError::Local {
            what: "fuzzy configuration",
            reason: "no blocking key (derive one from the linkage secret)".into(),
        });
    };
    let shape = MinHashParameters {
        bands: config
            .blocking
            .tokens_per_record(config.lsh.bands, config.fields.len()),
        rows: config.lsh.bits_per_band,
    };
    let hasher = MinHasher::new(key, shape).map_err(|e| ProtocolError::Local {
        what: "fuzzy.minhash",
        reason: e.to_string(),
    })?;
    Ok(match config.blocking {
        BlockingInput::ClkBits => {
            let clks = ClkMinHasher::new(hasher, config.filter_bits);
            (0..data.len())
                .into_par_iter()
                .map(|i| data.clk(i).map(|c| clks.tokens(c)).unwrap_or_default())
                .collect()
        }
        BlockingInput::FieldPairs => {
            let bands = config.lsh.bands;
            (0..data.len())
                .into_par_iter()
                .map_init(Vec::new, |element, r| {
                    let per_field: Vec<Vec<u64>> = (0..data.field_count())
                        .map(|f| {
                            let mut hashes: Vec<u64> = data
                                .field(r, f)
                                .map(|token| {
                                    element.clear();
                                    element.push(f as u8);
                                    element.extend_from_slice(token);
                                    hasher.element_hash(element)
                                })
                                .collect();
                            hashes.sort_unstable();
                            hashes.dedup();
                            hashes
                        })
                        .collect();
                    let mut out = Vec::new();
                    let mut pair = 0;
                    let mut union = Vec::new();
                    for f in 0..per_field.len() {
                        for g in f + 1..per_field.len() {
                            if !per_field[f].is_empty() && !per_field[g].is_empty() {
                                union.clear();
                                union.extend_from_slice(&per_field[f]);
                                union.extend_from_slice(&per_field[g]);
                                out.extend(hasher.band_tokens_of_hashes(
                                    &union,
                                    pair * bands..(pair + 1) * bands,
                                ));
                            }
                            pair += 1;
                        }
                    }
                    out
                })
                .collect()
        }
        BlockingInput::FieldTokens => {
            let per_record: Vec<Vec<u64>> = (0..data.len())
                .into_par_iter()
                .map_init(Vec::new, |element, r| {
                    let mut hashes: Vec<u64> = Vec::new();
                    for f in 0..data.field_count() {
                        for token in data.field(r, f) {
                            element.clear();
                            element.push(f as u8);
                            element.extend_from_slice(token);
                            hashes.push(hasher.element_hash(element));
                        }
                    }
                    hashes.sort_unstable();
                    hashes.dedup();
                    hashes
                })
                .collect();
            let common = common_elements(&per_record, config.common_share);
            per_record
                .par_iter()
                .map_init(Vec::new, |kept, hashes| {
                    kept.clear();
                    kept.extend(hashes.iter().filter(|h| !common.contains(h)));
                    if kept.is_empty() {
                        hasher.tokens_of_hashes(hashes)
                    } else {
                        hasher.tokens_of_hashes(kept)
                    }
                })
                .collect()
        }
    })
}

/// The elements more than `share` of the records hold (and at least [`MIN_COMMON_RECORDS`]):
/// left out of the MinHash, since two unrelated records sharing one of them as a minimum
/// would become a candidate pair.
fn common_elements(per_record: &[Vec<u64>], share: f64) -> HashSet<u64> {
    let mut count: HashMap<u64, u32> = HashMap::new();
    for hashes in per_record {
        for &h in hashes {
            *count.entry(h).or_default() += 1;
        }
    }
    let limit = (share * per_record.len() as f64).max(MIN_COMMON_RECORDS as f64);
    count
        .into_iter()
        .filter(|&(_, n)| f64::from(n) > limit)
        .map(|(h, _)| h)
        .collect()
}

/// Each record's exact token: the [`MinHasher::set_token`] of all its field tokens, each
/// tagged with its field (none for a record without tokens). These are the PSI inputs of
/// fuzzy's exact stage, next to [`fuzzy_blocking_tokens`]; public so that tests can search a
/// transcript for them.
///
/// # Errors
/// The configuration has no blocking key.
pub fn fuzzy_exact_tokens(
    config: &FuzzyConfig,
    data: &PartyData,
) -> Result<Vec<Option<Vec<u8>>>, ProtocolError> {
    let Some(key) = &config.blocking_key else {
        return Err(ProtocolError::Local {
            what: "fuzzy configuration",
            reason: "no blocking key (derive one from the linkage secret)".into(),
        });
    };
    let hasher = MinHasher::new(key, MinHashParameters { bands: 1, rows: 1 }).map_err(|e| {
        ProtocolError::Local {
            what: "fuzzy.minhash",
            reason: e.to_string(),
        }
    })?;
    Ok((0..data.len())
        .into_par_iter()
        .map_init(Vec::new, |element, r| {
            let mut hashes = Vec::new();
            for f in 0..data.field_count() {
                for token in data.field(r, f) {
                    element.clear();
                    element.push(f as u8);
                    element.extend_from_slice(token);
                    hashes.push(hasher.element_hash(element));
                }
            }
            hasher.set_token(&hashes)
        })
        .collect())
}

pub(crate) fn start(
    cx: &mut Context,
    _ledger: &mut DisclosureLedger,
    config: &FuzzyConfig,
) -> Result<Transition, ProtocolError> {
    let per_record = fuzzy_blocking_tokens(config, &cx.data)?;
    let mut elements = Vec::new();
    let mut record_of_element = Vec::new();
    for (record, tokens) in per_record.into_iter().enumerate() {
        for token in tokens {
            elements.push(token);
            record_of_element.push(record);
        }
    }
    // The exact stage: the whole-record tokens after the band tokens, in the same PSI.
    let first_exact = elements.len();
    if config.exact_stage {
        for (record, token) in fuzzy_exact_tokens(config, &cx.data)?
            .into_iter()
            .enumerate()
        {
            if let Some(token) = token {
                elements.push(token);
                record_of_element.push(record);
            }
        }
    }
    let distinct = elements.iter().collect::<HashSet<_>>().len();
    let band_key = MatchKeyName::new(BAND_KEY).map_err(local_psi)?;
    let (mutual, send) = Mutual::start(cx, &band_key, &elements, 0)?;
    Ok(Transition::to(
        send,
        Blocking {
            mutual,
            record_of_element,
            first_exact,
            distinct,
            settings: Settings {
                fields: config.fields.clone(),
                threshold: config.threshold,
                comparing: cx.role == config.comparing,
                buckets: config.buckets.clone(),
                batch_pairs: config.batch_pairs,
                max_pairs: config.max_pairs,
                max_tokens: config
                    .blocking
                    .tokens_per_record(config.lsh.bands, config.fields.len())
                    + usize::from(config.exact_stage),
            },
        },
    ))
}

/// Both sides: the band-token PSI in progress.
struct Blocking {
    mutual: Mutual,
    /// The record of each of this side's token elements.
    record_of_element: Vec<usize>,
    /// The elements from here on are exact tokens.
    first_exact: usize,
    distinct: usize,
    settings: Settings,
}

impl State for Blocking {
    fn name(&self) -> &'static str {
        "during the private set intersection"
    }

    fn expects(&self) -> Expect {
        self.mutual.expects(0)
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self {
            mutual,
            record_of_element,
            first_exact,
            distinct,
            settings,
        } = *self;
        match mutual.step(bytes, 0)? {
            MutualStep::Continue(mutual, send) => Ok(Transition::to(
                send,
                Blocking {
                    mutual,
                    record_of_element,
                    first_exact,
                    distinct,
                    settings,
                },
            )),
            MutualStep::Finished(outcome, mut send) => {
                cx.record_mutual(ledger, BAND_KEY, distinct, &outcome);
                let next = after_blocking(
                    cx,
                    ledger,
                    &record_of_element,
                    first_exact,
                    &outcome,
                    settings,
                )?;
                send.extend(next.send);
                Ok(Transition::new(send, next.next))
            }
        }
    }
}

/// After the band-token PSI: each record's matched token numbers; the answerer sends its
/// candidates, the querier waits for them.
fn after_blocking(
    cx: &mut Context,
    ledger: &mut DisclosureLedger,
    record_of_element: &[usize],
    first_exact: usize,
    outcome: &MutualOutcome,
    settings: Settings,
) -> Result<Transition, ProtocolError> {
    let mut matched: Vec<[u8; 32]> = outcome.matches.iter().map(|m| m.link_id.0).collect();
    matched.sort_unstable();
    matched.dedup();
    let number: HashMap<[u8; 32], u32> = matched
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as u32))
        .collect();
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); cx.data.len()];
    for m in &outcome.matches {
        if let (Some(&record), Some(&t)) =
            (record_of_element.get(m.index), number.get(&m.link_id.0))
        {
            tokens[record].push(t);
        }
    }
    for list in &mut tokens {
        list.sort_unstable();
        list.dedup();
    }
    if settings.comparing {
        let exact = outcome
            .matches
            .iter()
            .filter(|m| m.index >= first_exact)
            .filter_map(|m| number.get(&m.link_id.0).copied())
            .collect();
        return Ok(Transition::to(
            Vec::new(),
            AwaitCandidates {
                tokens,
                token_count: matched.len(),
                exact,
                settings,
            },
        ));
    }
    let mut positions: Vec<usize> = (0..tokens.len())
        .filter(|&i| !tokens[i].is_empty())
        .collect();
    shuffle(&mut positions, cx);
    let lists: Vec<Vec<u32>> = positions.iter().map(|&i| tokens[i].clone()).collect();
    ledger.record_revealed(Disclosure::CandidateTokens {
        records: positions.len() as u64,
    });
    let send = split(
        MessageKind::CandidateTokens,
        0,
        payload::encode_candidate_tokens(&lists),
    );
    Ok(Transition::to(
        send,
        AwaitPlan {
            positions,
            settings,
        },
    ))
}

/// Fisher-Yates with the session's randomness.
fn shuffle(items: &mut [usize], cx: &mut Context) {
    for i in (1..items.len()).rev() {
        let j = (cx.rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The name of pair `k` of candidate `b`.
fn pair_name(b: u32, k: u32) -> Vec<u8> {
    let mut name = b.to_be_bytes().to_vec();
    name.extend_from_slice(&k.to_be_bytes());
    name
}

/// The pair's name in the ledger.
fn ledger_pair(record: u32, k: u32) -> PairName {
    PairName::Candidate { record, k }
}

/// `(b, k)` of every pair, from the ascending candidate numbers of the plan.
fn names(positions: &[u32]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(positions.len());
    let mut k = 0;
    for (n, &b) in positions.iter().enumerate() {
        k = if n > 0 && positions[n - 1] == b {
            k + 1
        } else {
            0
        };
        out.push((b, k));
    }
    out
}

/// The groups of the pairs `range` (named by `names`), every field of each, pair-major; pair
/// `n` compares `record(n)`'s fields.
fn pair_groups(
    cx: &Context,
    names: &[(u32, u32)],
    range: std::ops::Range<usize>,
    record: impl Fn(usize) -> usize,
) -> Result<Vec<TokenGroup>, ProtocolError> {
    let mut groups = Vec::with_capacity(range.len() * cx.data.field_count());
    let mut fields = cx.data.field_reader();
    for n in range {
        let (b, k) = names[n];
        grouped::pair_groups(
            &pair_name(b, k),
            &cx.data,
            &mut fields,
            record(n),
            &mut groups,
        )?;
    }
    Ok(groups)
}

/// The querier's candidate pairs `(candidate number, own record)`, ascending: each
/// candidate against the own records sharing a matched token with it (skipping a token more
/// than [`MAX_TOKEN_GROUP`] own records hold), each pair once, and of those at most
/// `max_pairs`: the ones sharing the most tokens, then the lowest record numbers.
/// `by_token[t]` lists the own records holding matched token `t`; `candidates[b]` the matched
/// tokens of candidate `b` (each below `by_token.len()`).
pub(super) fn pair_candidates(
    by_token: &[Vec<usize>],
    candidates: &[Vec<u32>],
    max_pairs: usize,
) -> Vec<(u32, usize)> {
    candidates
        .par_iter()
        .enumerate()
        .flat_map_iter(|(b, list)| {
            let mut own: Vec<usize> = list
                .iter()
                .filter_map(|&t| by_token.get(t as usize))
                .filter(|group| group.len() <= MAX_TOKEN_GROUP)
                .flatten()
                .copied()
                .collect();
            own.sort_unstable();
            // (shared tokens, record), most shared first.
            let mut counted: Vec<(usize, usize)> = Vec::new();
            for a in own {
                match counted.last_mut() {
                    Some((n, last)) if *last == a => *n += 1,
                    _ => counted.push((1, a)),
                }
            }
            let best = counted.iter().map(|&(n, _)| n).max().unwrap_or(0);
            if counted.len() > max_pairs || counted.iter().any(|&(n, _)| 2 * n < best) {
                counted.sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
                counted.truncate(max_pairs);
                counted.retain(|&(n, _)| 2 * n >= best);
                counted.sort_unstable_by_key(|&(_, a)| a);
            }
            counted.into_iter().map(move |(_, a)| (b as u32, a))
        })
        .collect()
}

/// The candidate pairs `(record of a, record of b)` fuzzy compares when `a` compares, from
/// both sides' [`fuzzy_blocking_tokens`]: what the session computes after the band-token
/// PSI, for measuring a blocking locally (pairs completeness, pairs per record).
#[must_use]
pub fn fuzzy_candidate_pairs(
    config: &FuzzyConfig,
    a: &[Vec<Vec<u8>>],
    b: &[Vec<Vec<u8>>],
) -> Vec<(usize, usize)> {
    let in_b: HashSet<&[u8]> = b.iter().flatten().map(Vec::as_slice).collect();
    let mut number: HashMap<&[u8], u32> = HashMap::new();
    let mut by_token: Vec<Vec<usize>> = Vec::new();
    for (record, tokens) in a.iter().enumerate() {
        for t in tokens.iter().filter(|t| in_b.contains(t.as_slice())) {
            let next = number.len() as u32;
            let n = *number.entry(t.as_slice()).or_insert(next);
            if n as usize == by_token.len() {
                by_token.push(Vec::new());
            }
            let group = &mut by_token[n as usize];
            if group.last() != Some(&record) {
                group.push(record);
            }
        }
    }
    let candidates: Vec<Vec<u32>> = b
        .iter()
        .map(|tokens| {
            let mut list: Vec<u32> = tokens
                .iter()
                .filter_map(|t| number.get(t.as_slice()).copied())
                .collect();
            list.sort_unstable();
            list.dedup();
            list
        })
        .collect();
    pair_candidates(&by_token, &candidates, config.max_pairs)
        .into_iter()
        .map(|(b, a)| (a, b as usize))
        .collect()
}

/// The querier: waiting for the answerer's candidates.
struct AwaitCandidates {
    /// Own records' matched token numbers.
    tokens: Vec<Vec<u32>>,
    token_count: usize,
    /// The numbers of own matched exact tokens.
    exact: HashSet<u32>,
    settings: Settings,
}

impl State for AwaitCandidates {
    fn name(&self) -> &'static str {
        "while waiting for the candidate tokens"
    }

    fn expects(&self) -> Expect {
        Expect {
            kind: MessageKind::CandidateTokens,
            round: 0,
            // Each candidate holds at most `max_tokens` of the matched tokens; many
            // candidates may hold the same token (records alike on the peer's side), so the
            // number of matched tokens does not bound the message, the records do.
            limit: 4 + MAX_RECORDS
                .saturating_mul(2 + 4 * self.settings.max_tokens.min(self.token_count)),
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self {
            tokens,
            token_count,
            exact,
            settings,
        } = *self;
        let mut candidates = payload::decode_candidate_tokens(
            &bytes,
            MAX_RECORDS,
            settings.max_tokens,
            token_count,
        )?;
        ledger.record_learned(Disclosure::CandidateTokens {
            records: candidates.len() as u64,
        });
        // Own records by matched token.
        let mut by_token: Vec<Vec<usize>> = vec![Vec::new(); token_count];
        for (record, list) in tokens.iter().enumerate() {
            for &t in list {
                by_token[t as usize].push(record);
            }
        }
        let exact_links = exact_links(&by_token, &candidates, &exact);
        if !exact_links.is_empty() {
            // Both records of an exact link are in no other pair: the one-to-one solver
            // would link them first (score 1), so their other pairs could not link.
            let linked_own: HashSet<usize> = exact_links.iter().map(|&(_, a)| a).collect();
            for group in &mut by_token {
                group.retain(|a| !linked_own.contains(a));
            }
            for &(b, _) in &exact_links {
                candidates[b as usize].clear();
            }
        }
        let pairs = pair_candidates(&by_token, &candidates, settings.max_pairs);
        let fields = settings.fields.len();
        let positions: Vec<u32> = pairs.iter().map(|&(b, _)| b).collect();
        let names = names(&positions);
        let mut send = split(
            MessageKind::PairPlan,
            0,
            payload::encode_positions(&positions),
        );
        drop(positions);
        let mut batches = BatchQuerier::new(
            Batches::new(pairs.len(), settings.batch_pairs, fields),
            settings.buckets.clone(),
        );
        send.extend(batches.fill(cx, |cx, range| {
            pair_groups(cx, &names, range, |n| pairs[n].1)
        })?);
        Ok(Transition::to(
            send,
            AwaitReply {
                batches,
                kept: Vec::new(),
                pairs,
                exact_links,
                names,
                settings,
            },
        ))
    }
}

/// The exact stage's links `(candidate number, own record)`: an own exact token (a number in
/// `exact`) that exactly one own record and exactly one candidate hold links the two (two
/// records with the same whole record on one side are left to the comparison).
pub(super) fn exact_links(
    by_token: &[Vec<usize>],
    candidates: &[Vec<u32>],
    exact: &HashSet<u32>,
) -> Vec<(u32, usize)> {
    let mut holders: HashMap<u32, Vec<u32>> = HashMap::new();
    for (b, list) in candidates.iter().enumerate() {
        for t in list.iter().filter(|t| exact.contains(t)) {
            holders.entry(*t).or_default().push(b as u32);
        }
    }
    let mut links: Vec<(u32, usize)> = holders
        .into_iter()
        .filter_map(
            |(t, peers)| match (peers.as_slice(), by_token.get(t as usize)?.as_slice()) {
                (&[b], &[a]) => Some((b, a)),
                _ => None,
            },
        )
        .collect();
    links.sort_unstable();
    links
}

/// Most pairs in a plan over `candidates` candidates.
fn plan_limit(candidates: usize, settings: &Settings) -> usize {
    candidates.saturating_mul(settings.max_pairs)
}

/// The answerer: waiting for the pair plan; `positions[b]` is its candidate record `b`.
struct AwaitPlan {
    positions: Vec<usize>,
    settings: Settings,
}

impl State for AwaitPlan {
    fn name(&self) -> &'static str {
        "while waiting for the pair plan"
    }

    fn expects(&self) -> Expect {
        let max_pairs = plan_limit(self.positions.len(), &self.settings);
        Expect {
            kind: MessageKind::PairPlan,
            round: 0,
            limit: 4 + 4 * max_pairs,
        }
    }

    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        _ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError> {
        let Self {
            positions,
            settings,
        } = *self;
        let max_pairs = plan_limit(positions.len(), &settings);
        let plan = payload::decode_positions(&bytes, positions.len(), max_pairs)?;
        let names = names(&plan);
        if let Some(&(b, k)) = names
            .iter()
            .find(|&&(_, k)| k as usize >= settings.max_pairs)
        {
            return Err(ProtocolError::Invalid {
                what: "pair plan",
                reason: format!(
                    "candidate {b} is in pair {k}, over fuzzy.max_pairs = {}",
                    settings.max_pairs
                ),
            });
        }
        let fields = settings.fields.len();
        let mut batches = BatchAnswerer::new(
            Batches::new(names.len(), settings.batch_pairs, fields),
            settings.buckets.clone(),
        );
        // Pair `n`'s own record, by candidate number.
        let records: Vec<u32> = plan
            .iter()
            .map(|&b| u32::try_from(positions[b as usize]).unwrap_or(u32::MAX))
            .collect();
        drop(plan);
        batches.prepare(cx, |cx, range| {
            pair_groups(cx, &names, range, |n| records[n] as usize)
        })?;
        Ok(Transition::to(
            Vec::new(),
            AwaitQuery {
                batches,
                records,
                names,
                positions,
                settings,
            },
        ))
    }
}

/// The answerer: waiting for the grouped query of the next batch.
struct AwaitQuery {
    batches: BatchAnswerer,
    /// The own record of every pair.
    records: Vec<u32>,
    names: Vec<(u32, u32)>,
    positions: Vec<usize>,
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
            records,
            names,
            positions,
            settings,
        } = *self;
        batches.prepare(cx, |cx, range| {
            pair_groups(cx, &names, range, |n| records[n] as usize)
        })?;
        let (send, batch) = batches.answer(&bytes)?;
        drop(bytes);
        let fields = settings.fields.len();
        for (n, &(b, k)) in names[batch.pairs.clone()].iter().enumerate() {
            let range = n * fields..(n + 1) * fields;
            ledger.record_pair(
                ledger_pair(b, k),
                false,
                &batch.own_padded[range.clone()],
                &batch.peer_padded[range],
            );
        }
        if batches.finished() {
            cx.learned.compared_pairs = names.len() as u64;
            return Ok(Transition::to(send, AwaitLinkIds { positions }));
        }
        Ok(Transition::to(
            send,
            AwaitQuery {
                batches,
                records,
                names,
                positions,
                settings,
            },
        ))
    }
}

/// The querier: waiting for the grouped reply of the oldest batch in flight.
struct AwaitReply {
    batches: BatchQuerier,
    /// The pairs of the batches so far that the scorer did not reject.
    kept: Vec<Candidate>,
    /// `(candidate number, own record)` of every pair.
    pairs: Vec<(u32, usize)>,
    /// `(candidate number, own record)` of the exact stage's links.
    exact_links: Vec<(u32, usize)>,
    names: Vec<(u32, u32)>,
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
            mut kept,
            pairs,
            exact_links,
            names,
            settings,
        } = *self;
        let batch = batches.handle_reply(&bytes)?;
        drop(bytes);
        let fields = settings.fields.len().max(1);
        let scorer = ValidateScorer::new(settings.fields.clone(), settings.threshold);
        let buckets = &settings.buckets;
        kept.par_extend(
            batch
                .counts
                .par_chunks(fields)
                .zip(&pairs[batch.pairs.clone()])
                .filter_map(|(counts, &(b, a))| {
                    let dice: Vec<Option<f64>> = counts
                        .iter()
                        .map(|c| grouped::field_dice(c, buckets))
                        .collect();
                    let agreement = scorer.score_dice(&dice);
                    (!agreement.flagged).then_some(Candidate {
                        a,
                        b: b as usize,
                        score: agreement.score,
                    })
                }),
        );
        let mut peer_padded = Vec::with_capacity(fields);
        for (n, &(b, k)) in names[batch.pairs.clone()].iter().enumerate() {
            let range = n * fields..(n + 1) * fields;
            peer_padded.clear();
            peer_padded.extend(batch.counts[range.clone()].iter().map(|c| c.peer_padded));
            ledger.record_pair(
                ledger_pair(b, k),
                true,
                &peer_padded,
                &batch.own_padded[range],
            );
        }
        drop(batch);
        if !batches.finished() {
            let send = batches.fill(cx, |cx, range| {
                pair_groups(cx, &names, range, |n| pairs[n].1)
            })?;
            return Ok(Transition::to(
                send,
                AwaitReply {
                    batches,
                    kept,
                    pairs,
                    exact_links,
                    names,
                    settings,
                },
            ));
        }
        cx.learned.compared_pairs = pairs.len() as u64;
        cx.learned.exact_pairs = exact_links.len() as u64;
        kept.extend(exact_links.iter().map(|&(b, a)| Candidate {
            a,
            b: b as usize,
            score: 1.0,
        }));
        let send = linking::link_pairs(cx, ledger, &kept)?;
        Ok(Transition::new(send, Next::AwaitDone))
    }
}
