//! What `validate` and `fuzzy` do reveal, attacked: per compared pair and field, the comparing
//! side (a key holder, but one that receives no encoding) learns the number of tokens both
//! fields share, `|X ∩ Y|`, and the other side's token count padded to its size bucket
//! (`blindlink-psi`'s [`SizeBuckets`]); in `fuzzy` it also chooses which of its records are
//! paired with each of the other side's candidates (the MinHash blocking's candidate pairs).
//!
//! The attack is the best one this crate can build on those counts: for each of the other
//! side's records and each field, enumerate a dictionary of candidate values `y` (the
//! attacker's own values of the field with their frequencies as a prior; for the date of birth
//! every day 1900-2025, for the sex every ISO/IEC 5218 code) and keep those consistent with
//! every count it saw, `|X_r ∩ tokens(y)| = s_r` for each own record `r` paired with the
//! record and `bucket(|tokens(y)|) = b`. The posterior is the prior restricted to the
//! consistent values. Tokens are the fields' q-gram multisets exactly as
//! `blindlink_encoding::FieldTokenizer` makes them before keying (the key holder can compute
//! the keyed digests too, so nothing is lost by working on plaintext).
//!
//! Scored separately: fields where the paired values *agree* (the counts say so, and the
//! comparing side then knows the other's value: that is what validation is for) and fields
//! where they *disagree*, where anything learnt is a leak beyond "agrees / disagrees".

use std::collections::HashMap;

use blindlink_matching::{BlockingKey, MinHashParameters, MinHasher};
use blindlink_psi::SizeBuckets;

use crate::encode::normalised_values;
use crate::frequency::qgrams;
use crate::key_holder::field_dictionary;
use crate::metrics::{AttackScore, Guess};
use crate::{LeakageError, LinkedFiles, quasi_identifiers};

/// What the counts leak about one field of the other side's records.
#[derive(Debug, Clone, PartialEq)]
pub struct CountLeak {
    /// The field (column name).
    pub field: &'static str,
    /// Records of the other side compared on this field with the field present on both sides.
    pub observed: usize,
    /// ... of which at least one paired own record holds the same value.
    pub agreeing: usize,
    /// Re-identification of the disagreeing values: a guess per disagreeing record (its
    /// consistent candidates, most probable first).
    pub disagreeing: AttackScore,
    /// Disagreeing values whose most probable candidate is right.
    pub top1: usize,
    /// Entropy of the prior over the dictionary, bits.
    pub prior_bits: f64,
    /// Mean entropy of the posterior over the disagreeing values that have a consistent
    /// candidate, bits.
    pub posterior_bits: f64,
    /// Disagreeing values that are in the dictionary at all (the attack's ceiling).
    pub in_dictionary: usize,
}

impl CountLeak {
    /// Share of the disagreeing values whose most probable candidate is right.
    #[must_use]
    pub fn top1_share(&self) -> f64 {
        if self.disagreeing.targets == 0 {
            0.0
        } else {
            self.top1 as f64 / self.disagreeing.targets as f64
        }
    }
}

/// Candidate pairs `(own record, other side's record)` of `validate`: the linked IDs' pairs,
/// here the true pairs (the ID links the same person).
#[must_use]
pub fn validate_plan(files: &LinkedFiles) -> Vec<(usize, usize)> {
    files.true_pairs()
}

/// Wrong-person pairs, the My Number case `validate` exists to flag: every own record of a
/// true pair linked instead to the other side's record of the next true pair (another person).
/// Every field can disagree, and what the counts reveal is the wrong person's data.
#[must_use]
pub fn mislinked_plan(files: &LinkedFiles) -> Vec<(usize, usize)> {
    let pairs = files.true_pairs();
    (0..pairs.len())
        .map(|i| (pairs[i].0, pairs[(i + 1) % pairs.len()].1))
        .collect()
}

/// Candidate pairs of `fuzzy`: records sharing a MinHash band token over their field-tagged
/// tokens, with the blocking's `shape` (the caller passes the protocol's defaults:
/// `blindlink_protocol::DEFAULT_FUZZY_BANDS` × `DEFAULT_FUZZY_ROWS`) and band tokens held by
/// more than `max_token_group` own records left out, as the protocol does. The band tokens
/// are taken over plaintext tokens under a fixed key here (the protocol takes them over keyed
/// tokens under a key from the linkage secret: the same distribution).
///
/// # Errors
/// [`LeakageError::Blocking`] for a shape the MinHash refuses.
pub fn fuzzy_plan(
    files: &LinkedFiles,
    q: usize,
    shape: MinHashParameters,
    max_token_group: usize,
) -> Result<Vec<(usize, usize)>, LeakageError> {
    let hasher = MinHasher::new(&BlockingKey::new([0x42; 32]), shape)?;
    let band_tokens = |table: &crate::Table| -> Vec<Vec<Vec<u8>>> {
        let columns: Vec<Vec<Option<String>>> = (0..5)
            .map(|f| normalised_values(files.locale, table, f, q))
            .collect();
        (0..table.len())
            .map(|i| {
                let mut elements: Vec<Vec<u8>> = Vec::new();
                for (f, column) in columns.iter().enumerate() {
                    for token in field_tokens(files, f, column[i].as_deref(), q) {
                        let mut e = vec![f as u8];
                        e.extend_from_slice(token.as_bytes());
                        elements.push(e);
                    }
                }
                elements.sort_unstable();
                elements.dedup();
                hasher.tokens(elements)
            })
            .collect()
    };
    let own = band_tokens(&files.reference);
    let peer = band_tokens(&files.victim);
    let mut index: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (r, tokens) in own.iter().enumerate() {
        for t in tokens {
            index.entry(t.as_slice()).or_default().push(r);
        }
    }
    let mut pairs = Vec::new();
    for (v, tokens) in peer.iter().enumerate() {
        let mut rs: Vec<usize> = tokens
            .iter()
            .filter_map(|t| index.get(t.as_slice()))
            .filter(|rs| rs.len() <= max_token_group)
            .flatten()
            .copied()
            .collect();
        rs.sort_unstable();
        rs.dedup();
        pairs.extend(rs.into_iter().map(|r| (r, v)));
    }
    Ok(pairs)
}

/// The tokens of one field's normalised value, before keying: the q-grams (repeats kept) of a
/// text field, the value itself for the sex.
fn field_tokens(files: &LinkedFiles, field: usize, value: Option<&str>, q: usize) -> Vec<String> {
    match value {
        None | Some("") => Vec::new(),
        Some(v) if quasi_identifiers(files.locale)[field] == "sex" => vec![v.to_owned()],
        Some(v) => qgrams(v, q),
    }
}

/// A token multiset as sorted token ids.
fn interned(tokens: Vec<String>, ids: &mut HashMap<String, u32>) -> Vec<u32> {
    let mut out: Vec<u32> = tokens
        .into_iter()
        .map(|t| {
            let next = ids.len() as u32;
            *ids.entry(t).or_insert(next)
        })
        .collect();
    out.sort_unstable();
    out
}

/// `|a ∩ b|` of two sorted multisets.
fn shared(a: &[u32], b: &[u32]) -> usize {
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

fn entropy(weights: impl Iterator<Item = f64> + Clone) -> f64 {
    let total: f64 = weights.clone().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let h: f64 = weights
        .filter(|&w| w > 0.0)
        .map(|w| {
            let p = w / total;
            -p * p.log2()
        })
        .sum();
    h.max(0.0)
}

/// Runs the count attack on the pairs of `plan` (`(own record, other side's record)`, own =
/// the attacker's reference file, other = the victim file) for each of the five
/// quasi-identifiers, with token q-grams of length `q` and the protocol's `buckets`.
#[must_use]
pub fn count_attack(
    files: &LinkedFiles,
    plan: &[(usize, usize)],
    q: usize,
    buckets: &SizeBuckets,
) -> Vec<CountLeak> {
    let mut by_peer: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(r, v) in plan {
        by_peer.entry(v).or_default().push(r);
    }
    let mut peers: Vec<(usize, Vec<usize>)> = by_peer.into_iter().collect();
    peers.sort_unstable();
    (0..5)
        .map(|f| count_attack_field(files, &peers, f, q, buckets))
        .collect()
}

fn count_attack_field(
    files: &LinkedFiles,
    peers: &[(usize, Vec<usize>)],
    field: usize,
    q: usize,
    buckets: &SizeBuckets,
) -> CountLeak {
    let name = quasi_identifiers(files.locale)[field];
    let own_values = normalised_values(files.locale, &files.reference, field, q);
    let peer_values = normalised_values(files.locale, &files.victim, field, q);
    let mut ids = HashMap::new();
    let dictionary = field_dictionary(files.locale, &files.reference, field, q);
    let mut frequency: HashMap<&str, f64> = HashMap::new();
    for v in own_values.iter().flatten() {
        *frequency.entry(v.as_str()).or_default() += 1.0;
    }
    // Prior: the attacker's own frequencies, add-one smoothed (enumerated dates and codes it
    // has not seen keep a small weight).
    let prior: Vec<f64> = dictionary
        .iter()
        .map(|d| 1.0 + frequency.get(d.as_str()).copied().unwrap_or(0.0))
        .collect();
    let dict_tokens: Vec<Vec<u32>> = dictionary
        .iter()
        .map(|d| interned(field_tokens(files, field, Some(d), q), &mut ids))
        .collect();
    let dict_index: HashMap<&str, usize> = dictionary
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let mut by_bucket: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, t) in dict_tokens.iter().enumerate() {
        by_bucket
            .entry(buckets.padded(t.len()))
            .or_default()
            .push(i);
    }
    let (mut observed, mut agreeing, mut in_dictionary, mut top1) = (0, 0, 0, 0);
    let mut guesses = Vec::new();
    let mut truths = Vec::new();
    let mut posterior_bits = Vec::new();
    for (v, rs) in peers {
        let Some(y) = peer_values[*v].as_deref().filter(|y| !y.is_empty()) else {
            continue;
        };
        let own: Vec<(&str, Vec<u32>)> = rs
            .iter()
            .filter_map(|&r| own_values[r].as_deref().filter(|x| !x.is_empty()))
            .map(|x| {
                (
                    x,
                    interned(field_tokens(files, field, Some(x), q), &mut ids),
                )
            })
            .collect();
        if own.is_empty() {
            continue;
        }
        observed += 1;
        if own.iter().any(|(x, _)| *x == y) {
            agreeing += 1;
            continue;
        }
        let y_tokens = interned(field_tokens(files, field, Some(y), q), &mut ids);
        let counts: Vec<usize> = own.iter().map(|(_, x)| shared(x, &y_tokens)).collect();
        let bucket = buckets.padded(y_tokens.len());
        let mut consistent: Vec<usize> = by_bucket
            .get(&bucket)
            .map(|c| {
                c.iter()
                    .copied()
                    .filter(|&d| {
                        own.iter()
                            .zip(&counts)
                            .all(|((_, x), &s)| shared(x, &dict_tokens[d]) == s)
                    })
                    .collect()
            })
            .unwrap_or_default();
        consistent.sort_by(|&a, &b| prior[b].total_cmp(&prior[a]).then(a.cmp(&b)));
        let truth = dict_index.get(y).copied();
        in_dictionary += usize::from(truth.is_some());
        if let (Some(&best), Some(t)) = (consistent.first(), truth) {
            top1 += usize::from(best == t);
        }
        if !consistent.is_empty() {
            posterior_bits.push(entropy(consistent.iter().map(|&d| prior[d])));
        }
        let confidence = consistent.first().map_or(0.0, |&d| {
            prior[d] / consistent.iter().map(|&c| prior[c]).sum::<f64>()
        });
        guesses.push(Guess {
            candidates: consistent,
            confidence,
        });
        truths.push(truth);
    }
    let disagreeing = AttackScore::measure(&guesses, 10, |t, c| truths[t] == Some(c));
    CountLeak {
        field: name,
        observed,
        agreeing,
        disagreeing,
        top1,
        prior_bits: entropy(prior.iter().copied()),
        posterior_bits: if posterior_bits.is_empty() {
            0.0
        } else {
            posterior_bits.iter().sum::<f64>() / posterior_bits.len() as f64
        },
        in_dictionary,
    }
}
