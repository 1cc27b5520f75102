//! Attacks without the key on the bit patterns of the encodings, given a plaintext sample of
//! the same population (Kerckhoffs: the attacker knows q and which fields are encoded, not
//! the key):
//!
//! - [`frequency_attack`] (Christen, Schnell, Vatsalan & Ranbaduge, PAKDD 2017): the most
//!   frequent distinct filters are aligned with the most frequent plaintext values as long as
//!   both frequency rankings are unambiguous; the aligned pairs tell which bit positions each
//!   q-gram can set (the positions set in every aligned filter whose value holds the q-gram).
//! - [`pattern_mining_attack`] (Christen, Vidanage, Ranbaduge & Schnell, PAKDD 2018): works when
//!   every filter is unique, where alignment is impossible. It splits the filters recursively:
//!   in each partition the most frequent q-gram (conditional on the q-grams already decided
//!   for the partition) gets the maximal set of bit positions frequent enough to be its own,
//!   and the partition splits into the filters holding that pattern and the others.
//!
//! Both then re-identify every filter the same way: a plaintext value is a candidate for a
//! filter when, for every q-gram whose positions were identified, the filter has all of them
//! set exactly when the value holds the q-gram (one disagreement tolerated; the values with the
//! fewest are named). One candidate is a 1-to-1 re-identification.
//!
//! Simplifications against the papers: a record's tokens
//! are `(field, q-gram)` pairs (blindlink keys each field separately), and candidate values
//! are the distinct values of the attacker's sample (the papers do the same).

use std::collections::HashMap;

use crate::metrics::Guess;

/// Disagreements between a value's identified q-grams and a filter that still leave the value
/// a candidate.
const TOLERATED_MISSES: usize = 1;

/// Positions a mined pattern needs before it is taken for a q-gram's.
const MIN_PATTERN: usize = 4;

/// Parameters of the attacks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrequencyParams {
    /// q of the encoding's q-grams.
    pub q: usize,
    /// Fields whose value is one exact token (the sex) rather than q-grams, as a bit mask
    /// over the value's fields.
    pub exact_fields: u32,
    /// Alignment stops at the first rank whose frequency is not at least `1 + gap` times the
    /// next one's, in either ranking.
    pub gap: f64,
    /// Pattern mining: the two most frequent q-grams of a partition must differ by at least
    /// this share of their mean count (the published `stop_iter_perc`, as a fraction).
    pub stop_gap: f64,
    /// Pattern mining: partitions with fewer filters are not split further (the published
    /// `min_part_size`).
    pub min_partition: usize,
    /// Pattern mining: how many of the most frequent q-grams are mined.
    pub qgrams: usize,
    /// Candidates are named only when there are at most this many (else no guess).
    pub max_candidates: usize,
}

impl Default for FrequencyParams {
    fn default() -> Self {
        Self {
            q: 2,
            exact_fields: 0,
            gap: 0.05,
            stop_gap: 0.01,
            min_partition: 50,
            qgrams: 60,
            max_candidates: 10,
        }
    }
}

/// A value-level attack's result: the distinct plaintext values (fields joined by `|`) and
/// one guess per victim filter, its candidates indexing `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueAttack {
    /// Distinct plaintext values of the attacker's sample.
    pub values: Vec<String>,
    /// One guess per victim filter.
    pub guesses: Vec<Guess>,
    /// The q-grams whose bit positions the attack identified: `(field, q-gram, positions)`.
    pub identified: Vec<(u32, String, Vec<usize>)>,
}

/// Plaintext tokens of a value: `(field, q-gram)`.
type Token = (u32, String);

fn tokens(fields: &[String], params: &FrequencyParams) -> Vec<Token> {
    let mut out = Vec::new();
    for (f, value) in fields.iter().enumerate() {
        if value.is_empty() {
            continue;
        }
        if params.exact_fields & (1 << f) != 0 {
            out.push((f as u32, value.clone()));
        } else {
            out.extend(qgrams(value, params.q).into_iter().map(|g| (f as u32, g)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The q-grams of a value as the encoder makes them (clkhash's rule, which blindlink's native
/// schemas share): the value padded with `q − 1` spaces on each side.
pub(crate) fn qgrams(value: &str, q: usize) -> Vec<String> {
    let pad = q.saturating_sub(1);
    let chars: Vec<char> = std::iter::repeat_n(' ', pad)
        .chain(value.chars())
        .chain(std::iter::repeat_n(' ', pad))
        .collect();
    if value.is_empty() || chars.len() < q.max(1) {
        return Vec::new();
    }
    chars
        .windows(q.max(1))
        .map(|w| w.iter().collect())
        .collect()
}

struct Plain {
    values: Vec<String>,
    counts: Vec<usize>,
    tokens: Vec<Vec<usize>>,
    token_ids: HashMap<Token, usize>,
}

fn plain(sample: &[Vec<String>], params: &FrequencyParams) -> Plain {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut p = Plain {
        values: Vec::new(),
        counts: Vec::new(),
        tokens: Vec::new(),
        token_ids: HashMap::new(),
    };
    for fields in sample {
        let key = fields.join("|");
        if let Some(&i) = index.get(&key) {
            p.counts[i] += 1;
            continue;
        }
        index.insert(key.clone(), p.values.len());
        let ids: Vec<usize> = tokens(fields, params)
            .into_iter()
            .map(|t| {
                let next = p.token_ids.len();
                *p.token_ids.entry(t).or_insert(next)
            })
            .collect();
        p.values.push(key);
        p.counts.push(1);
        p.tokens.push(ids);
    }
    p
}

fn bit(filter: &[u8], i: usize) -> bool {
    filter[i >> 3] & (0x80 >> (i & 7)) != 0
}

/// Re-identifies every filter from q-gram → positions knowledge.
fn reidentify(
    victim: &[Vec<u8>],
    plain: &Plain,
    positions: &HashMap<usize, Vec<usize>>,
    fixed: &HashMap<Vec<u8>, usize>,
    max_candidates: usize,
) -> Vec<Guess> {
    // Which identified q-grams each value holds.
    let known: Vec<usize> = {
        let mut k: Vec<usize> = positions.keys().copied().collect();
        k.sort_unstable();
        k
    };
    let holds: Vec<Vec<bool>> = plain
        .tokens
        .iter()
        .map(|ts| known.iter().map(|g| ts.contains(g)).collect())
        .collect();
    let mut cache: HashMap<&[u8], Guess> = HashMap::new();
    victim
        .iter()
        .map(|b| {
            if let Some(&v) = fixed.get(b) {
                return Guess::one(v, 1.0);
            }
            if let Some(g) = cache.get(b.as_slice()) {
                return g.clone();
            }
            let has: Vec<bool> = known
                .iter()
                .map(|g| positions[g].iter().all(|&p| bit(b, p)))
                .collect();
            // Values whose identified q-grams agree best with the filter's (a mined pattern
            // can be wrong, and a filter can hold a q-gram's bits by chance: one
            // disagreement is tolerated).
            let candidates: Vec<usize> = if known.is_empty() || !has.iter().any(|&h| h) {
                Vec::new()
            } else {
                let misses: Vec<usize> = holds
                    .iter()
                    .map(|h| h.iter().zip(&has).filter(|(a, b)| a != b).count())
                    .collect();
                let least = misses.iter().copied().min().unwrap_or(usize::MAX);
                if least > TOLERATED_MISSES {
                    Vec::new()
                } else {
                    (0..plain.values.len())
                        .filter(|&v| misses[v] == least)
                        .collect()
                }
            };
            let guess = if candidates.is_empty() || candidates.len() > max_candidates {
                Guess::default()
            } else {
                let confidence = 1.0 / candidates.len() as f64;
                Guess {
                    candidates,
                    confidence,
                }
            };
            cache.insert(b.as_slice(), guess.clone());
            guess
        })
        .collect()
}

fn distinct_filters(victim: &[Vec<u8>]) -> Vec<(Vec<u8>, usize)> {
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for b in victim {
        *counts.entry(b.as_slice()).or_default() += 1;
    }
    let mut v: Vec<(Vec<u8>, usize)> = counts.into_iter().map(|(b, c)| (b.to_vec(), c)).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// The frequency alignment attack of Christen et al. (PAKDD 2017) on `victim` filters, with
/// the attacker's plaintext `sample` (per record, the normalised values of the encoded fields
/// in schema order).
#[must_use]
pub fn frequency_attack(
    victim: &[Vec<u8>],
    sample: &[Vec<String>],
    params: FrequencyParams,
) -> ValueAttack {
    let plain = plain(sample, &params);
    let filters = distinct_filters(victim);
    let mut order: Vec<usize> = (0..plain.values.len()).collect();
    order.sort_unstable_by(|&a, &b| plain.counts[b].cmp(&plain.counts[a]).then(a.cmp(&b)));
    // Align while both rankings are unambiguous.
    let mut aligned: Vec<(usize, usize)> = Vec::new();
    let distinct = |counts: &dyn Fn(usize) -> usize, i: usize, len: usize| {
        let next = if i + 1 < len { counts(i + 1) } else { 0 };
        counts(i) as f64 >= (1.0 + params.gap) * next as f64 && counts(i) >= 2
    };
    let n = filters.len().min(order.len());
    for i in 0..n {
        let fc = |k: usize| filters[k].1;
        let pc = |k: usize| plain.counts[order[k]];
        if !(distinct(&fc, i, filters.len()) && distinct(&pc, i, order.len())) {
            break;
        }
        aligned.push((i, order[i]));
    }
    let bits = victim.first().map_or(0, |b| b.len() * 8);
    // Possible positions of a q-gram: set in every aligned filter whose value holds it.
    let mut possible: HashMap<usize, (Vec<bool>, usize)> = HashMap::new();
    for &(fi, v) in &aligned {
        let b = &filters[fi].0;
        for &g in &plain.tokens[v] {
            let e = possible.entry(g).or_insert_with(|| (vec![true; bits], 0));
            for (p, keep) in e.0.iter_mut().enumerate() {
                *keep &= bit(b, p);
            }
            e.1 += 1;
        }
    }
    // Only q-grams seen in at least two aligned values have narrowed down to their own bits.
    let positions: HashMap<usize, Vec<usize>> = possible
        .into_iter()
        .filter(|(_, (_, seen))| *seen >= 2)
        .map(|(g, (mask, _))| (g, (0..bits).filter(|&p| mask[p]).collect::<Vec<_>>()))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let fixed: HashMap<Vec<u8>, usize> = aligned
        .iter()
        .map(|&(fi, v)| (filters[fi].0.clone(), v))
        .collect();
    let guesses = reidentify(victim, &plain, &positions, &fixed, params.max_candidates);
    ValueAttack {
        identified: identified(&plain, positions),
        values: plain.values,
        guesses,
    }
}

/// The pattern-mining attack of Christen, Vidanage, Ranbaduge & Schnell (PAKDD 2018) on
/// `victim` filters, with the attacker's plaintext `sample` as for [`frequency_attack`].
///
/// As published, it works on *partitions* of the filters, starting from all of them:
///
/// 1. Among the sample's values consistent with the partition (holding every q-gram the
///    partition must hold, none it must not), take the two most frequent q-grams not yet
///    identified. If their counts differ by less than [`FrequencyParams::stop_gap`] of their
///    mean, the partition is left alone: a tie cannot say which pattern is whose.
/// 2. The minimum support is that mean count scaled to the victim's size, so that the top
///    q-gram's positions reach it and the second's do not. Mine the longest set of bit
///    positions (outside those already assigned on this partition's path) that are all set in
///    at least that many of the partition's filters: a maximal frequent itemset. Patterns much
///    shorter than the ones found so far (k is the same for every q-gram) are refused.
/// 3. Assign the q-gram to those positions, split the partition into the filters holding all
///    of them (must hold the q-gram) and the others (must not), and queue both while they
///    have at least [`FrequencyParams::min_partition`] filters. In the split partitions the
///    q-gram frequencies are those *conditional* on the q-grams decided so far: this is the
///    co-occurrence constraint that separates q-grams of equal overall frequency.
///
/// Re-identification is then as for [`frequency_attack`].
///
/// Simplification: the maximal itemset is grown greedily (adding the position that keeps the
/// most filters) from each of the 8 most frequent candidate positions and the longest
/// result kept, instead of enumerating the Apriori lattice; a partition with more than
/// 64 frequent positions (balanced filters, where every complement bit is
/// frequent) has no pattern a q-gram can own and is left alone, as the published code's
/// lattice would explode there.
#[must_use]
pub fn pattern_mining_attack(
    victim: &[Vec<u8>],
    sample: &[Vec<String>],
    params: FrequencyParams,
) -> ValueAttack {
    let plain = plain(sample, &params);
    let bits = victim.first().map_or(0, |b| b.len() * 8);
    let n = victim.len();
    let total: usize = plain.counts.iter().sum();
    let columns = column_bitsets(victim, bits);
    let all = Bitset::full(n);
    let mut queue = vec![Partition {
        rows: all,
        used: vec![false; bits],
        must: Vec::new(),
        must_not: Vec::new(),
    }];
    let mut positions: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut iterations = 0;
    while !queue.is_empty() && positions.len() < params.qgrams && iterations < 8 * params.qgrams {
        iterations += 1;
        // Largest partition first.
        let at = (0..queue.len())
            .max_by_key(|&i| (queue[i].rows.count(), std::cmp::Reverse(i)))
            .unwrap_or(0);
        let part = queue.swap_remove(at);
        let Some((top, c1, c2)) = top_two(&plain, &part) else {
            continue;
        };
        if positions.contains_key(&top) {
            continue;
        }
        let mean = (c1 + c2) as f64 / 2.0;
        if mean <= 0.0 || (c1 - c2) as f64 / mean < params.stop_gap {
            continue;
        }
        let min_count = (mean / total.max(1) as f64 * n as f64).floor() as usize;
        if min_count < 2 {
            continue;
        }
        let Some(pattern) = mine_pattern(&columns, &part, min_count) else {
            continue;
        };
        if pattern.len() < MIN_PATTERN {
            continue;
        }
        if !sizes.is_empty() {
            let average = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
            // The published check: 20 % shorter than the average so far is no q-gram's.
            if (pattern.len() as f64) < average * 0.8 {
                continue;
            }
        }
        sizes.push(pattern.len());
        let mut holding = part.rows.clone();
        for &p in &pattern {
            holding.and_with(&columns[p]);
        }
        let lacking = part.rows.and_not(&holding);
        let mut used = part.used.clone();
        for &p in &pattern {
            used[p] = true;
        }
        positions.insert(top, pattern);
        let min_partition = params.min_partition.max(2);
        if holding.count() >= min_partition {
            let mut must = part.must.clone();
            must.push(top);
            queue.push(Partition {
                rows: holding,
                used: used.clone(),
                must,
                must_not: part.must_not.clone(),
            });
        }
        if lacking.count() >= min_partition {
            let mut must_not = part.must_not;
            must_not.push(top);
            queue.push(Partition {
                rows: lacking,
                used,
                must: part.must,
                must_not,
            });
        }
    }
    let guesses = reidentify(
        victim,
        &plain,
        &positions,
        &HashMap::new(),
        params.max_candidates,
    );
    ValueAttack {
        identified: identified(&plain, positions),
        values: plain.values,
        guesses,
    }
}

/// Frequent positions above which a partition is left alone (see [`pattern_mining_attack`]).
const MAX_CANDIDATES: usize = 64;

/// Seeds of the greedy maximal-itemset growth (see [`pattern_mining_attack`]).
const SEEDS: usize = 8;

/// A set of filters (rows) still to mine, with the q-gram decisions that led to it.
struct Partition {
    rows: Bitset,
    /// Positions assigned on the path to this partition (not mined again).
    used: Vec<bool>,
    must: Vec<usize>,
    must_not: Vec<usize>,
}

/// The two most frequent q-grams (weighted by value counts) among the sample's values
/// consistent with the partition, leaving out the q-grams it must hold: `(top, its count,
/// the second's count)`. Ties go to the lower token id, so the result is deterministic.
fn top_two(plain: &Plain, part: &Partition) -> Option<(usize, usize, usize)> {
    let mut counts = vec![0usize; plain.token_ids.len()];
    for (v, ts) in plain.tokens.iter().enumerate() {
        let consistent = part.must.iter().all(|g| ts.contains(g))
            && !part.must_not.iter().any(|g| ts.contains(g));
        if !consistent {
            continue;
        }
        for &g in ts {
            if !part.must.contains(&g) {
                counts[g] += plain.counts[v];
            }
        }
    }
    let mut order: Vec<usize> = (0..counts.len()).filter(|&g| counts[g] > 0).collect();
    order.sort_unstable_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let top = *order.first()?;
    let second = order.get(1).map_or(0, |&g| counts[g]);
    Some((top, counts[top], second))
}

/// The longest set of free positions all set in at least `min_count` of the partition's
/// rows, grown greedily from the most frequent candidates (see [`pattern_mining_attack`]).
fn mine_pattern(columns: &[Bitset], part: &Partition, min_count: usize) -> Option<Vec<usize>> {
    let mut candidates: Vec<(usize, Bitset)> = Vec::new();
    for (p, column) in columns.iter().enumerate() {
        if part.used[p] {
            continue;
        }
        let rows = column.and(&part.rows);
        if rows.count() >= min_count {
            candidates.push((p, rows));
            if candidates.len() > MAX_CANDIDATES {
                return None;
            }
        }
    }
    candidates.sort_by(|a, b| b.1.count().cmp(&a.1.count()).then(a.0.cmp(&b.0)));
    let mut best: Option<(Vec<usize>, usize)> = None;
    for seed in 0..candidates.len().min(SEEDS) {
        let mut set = vec![seed];
        let mut rows = candidates[seed].1.clone();
        loop {
            let next = (0..candidates.len())
                .filter(|c| !set.contains(c))
                .map(|c| (rows.and_count(&candidates[c].1), c))
                .filter(|&(count, _)| count >= min_count)
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            let Some((_, c)) = next else { break };
            rows.and_with(&candidates[c].1);
            set.push(c);
        }
        let support = rows.count();
        let better = match &best {
            None => true,
            Some((b, s)) => set.len() > b.len() || (set.len() == b.len() && support > *s),
        };
        if better {
            best = Some((set, support));
        }
    }
    best.map(|(set, _)| {
        let mut p: Vec<usize> = set.into_iter().map(|c| candidates[c].0).collect();
        p.sort_unstable();
        p
    })
}

/// A fixed-length set of row indices.
#[derive(Clone)]
struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn empty(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64)],
        }
    }

    fn full(n: usize) -> Self {
        let mut b = Self::empty(n);
        for i in 0..n {
            b.words[i / 64] |= 1 << (i % 64);
        }
        b
    }

    fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn and(&self, other: &Self) -> Self {
        Self {
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a & b)
                .collect(),
        }
    }

    fn and_not(&self, other: &Self) -> Self {
        Self {
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a & !b)
                .collect(),
        }
    }

    fn and_with(&mut self, other: &Self) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    fn and_count(&self, other: &Self) -> usize {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }
}

/// Column view of the filters: which rows set each position.
fn column_bitsets(victim: &[Vec<u8>], bits: usize) -> Vec<Bitset> {
    let mut columns = vec![Bitset::empty(victim.len()); bits];
    for (r, filter) in victim.iter().enumerate() {
        for (p, column) in columns.iter_mut().enumerate() {
            if bit(filter, p) {
                column.words[r / 64] |= 1 << (r % 64);
            }
        }
    }
    columns
}

fn identified(
    plain: &Plain,
    positions: HashMap<usize, Vec<usize>>,
) -> Vec<(u32, String, Vec<usize>)> {
    let mut names: Vec<(&Token, usize)> = plain.token_ids.iter().map(|(t, &i)| (t, i)).collect();
    names.sort_unstable_by_key(|&(_, i)| i);
    let mut out: Vec<(u32, String, Vec<usize>)> = positions
        .into_iter()
        .map(|(g, p)| (names[g].0.0, names[g].0.1.clone(), p))
        .collect();
    out.sort_unstable();
    out
}
