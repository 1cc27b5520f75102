//! Attacks without the key on the bit patterns of the encodings, given a plaintext sample of
//! the same population (Kerckhoffs: the attacker knows q and which fields are encoded, not
//! the key):
//!
//! - [`frequency_attack`] (Christen, Schnell, Vatsalan & Ranbaduge, PAKDD 2017): the most
//!   frequent distinct filters are aligned with the most frequent plaintext values as long as
//!   both frequency rankings are unambiguous; the aligned pairs tell which bit positions each
//!   q-gram can set (the positions set in every aligned filter whose value holds the q-gram).
//! - [`pattern_mining_attack`] (Christen, Vidanage, Ranbaduge & Schnell, PAKDD 2018): works when
//!   every filter is unique, where alignment is impossible. For the most frequent q-grams of
//!   the plaintext, in order, it mines the set of bit positions that co-occur in about as many
//!   filters as the q-gram has values (a greedy maximal frequent itemset), and assigns it.
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
    /// Pattern mining: a q-gram's positions must co-occur in at least `1 − slack` of its
    /// expected number of filters.
    pub slack: f64,
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
            slack: 0.15,
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

/// The pattern-mining attack of Christen et al. (PAKDD 2018) on `victim` filters, with the
/// attacker's plaintext `sample` as for [`frequency_attack`].
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
    // Relative frequency of each q-gram in the plaintext records.
    let mut freq = vec![0usize; plain.token_ids.len()];
    for (v, ts) in plain.tokens.iter().enumerate() {
        for &g in ts {
            freq[g] += plain.counts[v];
        }
    }
    let mut order: Vec<usize> = (0..freq.len()).collect();
    order.sort_unstable_by(|&a, &b| freq[b].cmp(&freq[a]).then(a.cmp(&b)));
    // Column view: which filters set each position.
    let columns: Vec<Vec<usize>> = (0..bits)
        .map(|p| (0..n).filter(|&r| bit(&victim[r], p)).collect())
        .collect();
    let mut assigned = vec![false; bits];
    let mut positions: HashMap<usize, Vec<usize>> = HashMap::new();
    for &g in order.iter().take(params.qgrams) {
        let expected = freq[g] as f64 / total.max(1) as f64 * n as f64;
        let floor = ((1.0 - params.slack) * expected).ceil() as usize;
        if floor < 2 {
            break;
        }
        // Seed: the free position set most often (in descending q-gram frequency, the
        // current q-gram's positions are the most frequent of those still free).
        let seed = (0..bits)
            .filter(|&p| !assigned[p] && columns[p].len() >= floor)
            .max_by(|&a, &b| columns[a].len().cmp(&columns[b].len()).then(b.cmp(&a)));
        let Some(seed) = seed else { continue };
        let mut rows = columns[seed].clone();
        let mut set = vec![seed];
        loop {
            let best = (0..bits)
                .filter(|&p| !assigned[p] && !set.contains(&p))
                .map(|p| (intersect_len(&rows, &columns[p]), p))
                .filter(|&(c, _)| c >= floor)
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            let Some((_, p)) = best else { break };
            rows = intersect(&rows, &columns[p]);
            set.push(p);
        }
        // A short pattern is no q-gram's: likely a few frequent bits shared by chance.
        if set.len() < MIN_PATTERN {
            continue;
        }
        for &p in &set {
            assigned[p] = true;
        }
        set.sort_unstable();
        positions.insert(g, set);
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

fn intersect_len(a: &[usize], b: &[usize]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

fn intersect(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}
