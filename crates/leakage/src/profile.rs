//! A vulnerability profile of an encoded database against its own plaintext, after the five
//! vulnerability types of Vidanage, Christen, Ranbaduge & Schnell, *A vulnerability assessment
//! framework for privacy-preserving record linkage* (ACM TOPS, 2023, doi:10.1145/3589641):
//! **frequency**, **length**, **co-occurrence**, **similarity** and **similarity
//! neighbourhood**, the five signals an attacker can carry from plaintext values to their
//! encodings.
//!
//! Each type gets one cheap proxy in `[0, 1]` (a correlation clipped at 0, or a share): how
//! much of that signal of the plaintext the encoding preserves, the data owner's view (it
//! holds both). 0 says the encoding keeps none of it, 1 that it keeps all of it.
//!
//! | type | proxy | the attack that exploits it |
//! |---|---|---|
//! | frequency | Spearman correlation, over records, of how often the record's encoding occurs with how often its plaintext value occurs (0 when every value is unique: nothing to align) | frequency alignment (PAKDD 2017) |
//! | length | Pearson correlation of an encoding's Hamming weight with its plaintext's token count | length filtering in the attacks of the series |
//! | co-occurrence | mean over bit positions of the strongest positive phi correlation with another position: the k positions of one q-gram are set together | pattern mining (PAKDD 2018) |
//! | similarity | Spearman correlation of Dice(encodings) with Dice(plaintext tokens) over every pair of the sample | graph matching (CIKM 2020) |
//! | similarity neighbourhood | mean share of a record's k nearest neighbours by encoding that are among its k nearest by plaintext (ties by plaintext counted in) | graph matching's neighbourhood features |
//!
//! Where ours differs from the paper: the paper assesses the vulnerability of *values* (how many
//! plaintext and encoded values are distinguishable by each feature, so how many an attacker
//! could re-identify through it); we could read its abstract only, not the per-value measures,
//! so these proxies are database-level statistics of how much of each signal survives encoding.
//! They rank encodings and hardenings (the unit tests pin the directions: balancing drives the
//! length proxy to exactly 0, record salting lowers similarity and its neighbourhood, fresh
//! BLIP removes the frequency signal) but are not attack success rates; §4 of papers/leakage.md
//! has those. The pairwise proxies run on an evenly spaced sample of at most
//! [`ProfileParams::sample`] records.

use std::collections::HashMap;

/// Parameters of [`vulnerability_profile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileParams {
    /// Records in the sample of the pairwise proxies (co-occurrence, similarity,
    /// neighbourhood): cost grows with its square.
    pub sample: usize,
    /// k of the similarity neighbourhood.
    pub neighbours: usize,
}

impl Default for ProfileParams {
    fn default() -> Self {
        Self {
            sample: 1000,
            neighbours: 10,
        }
    }
}

/// The five proxies, each in `[0, 1]` (see the module documentation), and the share of
/// unique encodings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VulnerabilityProfile {
    /// Records profiled.
    pub records: usize,
    /// Share of records whose encoding occurs once in the database.
    pub unique_encodings: f64,
    /// Frequency: rank correlation of encoding and plaintext-value frequencies.
    pub frequency: f64,
    /// Length: correlation of Hamming weight with plaintext token count.
    pub length: f64,
    /// Co-occurrence: mean strongest positive phi of a bit position with another.
    pub co_occurrence: f64,
    /// Similarity: rank correlation of encoded and plaintext Dice over sampled pairs.
    pub similarity: f64,
    /// Similarity neighbourhood: mean k-nearest-neighbour overlap of the two spaces.
    pub neighbourhood: f64,
}

/// Profiles `encodings` (one filter per record, of equal lengths; unequal ones are compared on
/// the shortest's positions) against `plaintext` (per record,
/// its plaintext tokens, e.g. `field:q-gram`, and optionally, as `value`, the plaintext value
/// key whose frequency the encoding may reveal).
///
/// # Example
/// ```
/// use blindlink_leakage::{PlaintextRecord, ProfileParams, vulnerability_profile};
/// // Two values, one twice: the encodings repeat exactly as the values do.
/// let plaintext: Vec<PlaintextRecord> = ["ab", "ab", "cd"]
///     .iter()
///     .map(|v| PlaintextRecord { value: v.to_string(), tokens: vec![v.to_string()] })
///     .collect();
/// let encodings = vec![vec![0b1100_0000], vec![0b1100_0000], vec![0b0011_1000]];
/// let p = vulnerability_profile(&encodings, &plaintext, ProfileParams::default());
/// assert_eq!(p.frequency, 1.0);
/// assert!((p.unique_encodings - 1.0 / 3.0).abs() < 1e-12);
/// ```
#[must_use]
pub fn vulnerability_profile(
    encodings: &[Vec<u8>],
    plaintext: &[PlaintextRecord],
    params: ProfileParams,
) -> VulnerabilityProfile {
    let n = encodings.len().min(plaintext.len());
    if n == 0 {
        return VulnerabilityProfile::default();
    }
    let encodings = &encodings[..n];
    let plaintext = &plaintext[..n];
    let encoded_count = counts(encodings.iter().map(Vec::as_slice));
    let value_count = counts(plaintext.iter().map(|p| p.value.as_str()));
    let enc_freq: Vec<f64> = encodings
        .iter()
        .map(|e| encoded_count[e.as_slice()] as f64)
        .collect();
    let value_freq: Vec<f64> = plaintext
        .iter()
        .map(|p| value_count[p.value.as_str()] as f64)
        .collect();
    let unique = enc_freq.iter().filter(|&&c| c == 1.0).count();
    let weights: Vec<f64> = encodings
        .iter()
        .map(|e| f64::from(e.iter().map(|b| b.count_ones()).sum::<u32>()))
        .collect();
    let token_counts: Vec<f64> = plaintext.iter().map(|p| p.tokens.len() as f64).collect();

    let sample = sample_indices(n, params.sample);
    let words: Vec<Vec<u64>> = sample.iter().map(|&i| to_words(&encodings[i])).collect();
    let tokens: Vec<Vec<&str>> = sample
        .iter()
        .map(|&i| {
            let mut t: Vec<&str> = plaintext[i].tokens.iter().map(String::as_str).collect();
            t.sort_unstable();
            t.dedup();
            t
        })
        .collect();
    let m = sample.len();
    // Pairwise similarities of the sample in both spaces, row-major, diagonal unused.
    let mut encoded = vec![0.0; m * m];
    let mut plain = vec![0.0; m * m];
    for i in 0..m {
        for j in i + 1..m {
            let e = dice_words(&words[i], &words[j]);
            let p = dice_tokens(&tokens[i], &tokens[j]);
            encoded[i * m + j] = e;
            encoded[j * m + i] = e;
            plain[i * m + j] = p;
            plain[j * m + i] = p;
        }
    }
    let (mut upper_e, mut upper_p) = (Vec::new(), Vec::new());
    for i in 0..m {
        for j in i + 1..m {
            upper_e.push(encoded[i * m + j]);
            upper_p.push(plain[i * m + j]);
        }
    }
    VulnerabilityProfile {
        records: n,
        unique_encodings: unique as f64 / n as f64,
        frequency: rank_correlation(&enc_freq, &value_freq).max(0.0),
        length: pearson(&weights, &token_counts).max(0.0),
        // The shortest filter bounds the positions (filters of one encoding are equal length).
        co_occurrence: co_occurrence(
            &words,
            encodings.iter().map(Vec::len).min().unwrap_or(0) * 8,
        ),
        similarity: rank_correlation(&upper_e, &upper_p).max(0.0),
        neighbourhood: neighbourhood_overlap(&encoded, &plain, m, params.neighbours),
    }
}

/// One record's plaintext as [`vulnerability_profile`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaintextRecord {
    /// The plaintext value (the encoded fields joined): equal values are the same value.
    pub value: String,
    /// The tokens the encoding hashes (any order, duplicates ignored).
    pub tokens: Vec<String>,
}

fn counts<'a, T: std::hash::Hash + Eq + ?Sized + 'a>(
    items: impl Iterator<Item = &'a T>,
) -> HashMap<&'a T, usize> {
    let mut c = HashMap::new();
    for item in items {
        *c.entry(item).or_insert(0) += 1;
    }
    c
}

/// At most `max` indices of `0..n`, evenly spaced (all of them when `n <= max`).
fn sample_indices(n: usize, max: usize) -> Vec<usize> {
    let max = max.max(2);
    if n <= max {
        return (0..n).collect();
    }
    (0..max).map(|i| i * n / max).collect()
}

fn to_words(filter: &[u8]) -> Vec<u64> {
    filter
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_be_bytes(w)
        })
        .collect()
}

fn dice_words(a: &[u64], b: &[u64]) -> f64 {
    let (mut common, mut total) = (0u32, 0u32);
    for (x, y) in a.iter().zip(b) {
        common += (x & y).count_ones();
        total += x.count_ones() + y.count_ones();
    }
    if total == 0 {
        0.0
    } else {
        2.0 * f64::from(common) / f64::from(total)
    }
}

/// Dice of two sorted, deduplicated token lists.
fn dice_tokens(a: &[&str], b: &[&str]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / total as f64
}

/// Pearson correlation; 0 when either side is constant (no signal to carry).
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x[..n].iter().zip(&y[..n]) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx <= f64::EPSILON * n as f64 || syy <= f64::EPSILON * n as f64 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Average ranks (ties share the mean of their ranks).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_unstable_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        let mean = (start + end - 1) as f64 / 2.0;
        for &i in &order[start..end] {
            r[i] = mean;
        }
        start = end;
    }
    r
}

/// Spearman's rank correlation (Pearson on average ranks); 0 when either side is constant.
fn rank_correlation(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Mean over non-constant bit positions of the strongest positive phi with another position.
fn co_occurrence(rows: &[Vec<u64>], bits: usize) -> f64 {
    let n = rows.len();
    if n < 2 || bits == 0 {
        return 0.0;
    }
    // Column bitsets: which sampled rows set each position.
    let row_words = n.div_ceil(64);
    let mut columns = vec![vec![0u64; row_words]; bits];
    for (r, row) in rows.iter().enumerate() {
        for (p, column) in columns.iter_mut().enumerate() {
            if row[p / 64] & (1u64 << (63 - p % 64)) != 0 {
                column[r / 64] |= 1 << (r % 64);
            }
        }
    }
    let ones: Vec<usize> = columns
        .iter()
        .map(|c| c.iter().map(|w| w.count_ones() as usize).sum())
        .collect();
    let live: Vec<usize> = (0..bits).filter(|&p| ones[p] > 0 && ones[p] < n).collect();
    if live.len() < 2 {
        return 0.0;
    }
    let nf = n as f64;
    let mut best = vec![0.0f64; bits];
    for (a, &p) in live.iter().enumerate() {
        for &q in &live[a + 1..] {
            let both: usize = columns[p]
                .iter()
                .zip(&columns[q])
                .map(|(x, y)| (x & y).count_ones() as usize)
                .sum();
            let (np, nq) = (ones[p] as f64, ones[q] as f64);
            let phi = (nf * both as f64 - np * nq) / (np * (nf - np) * nq * (nf - nq)).sqrt();
            best[p] = best[p].max(phi);
            best[q] = best[q].max(phi);
        }
    }
    (live.iter().map(|&p| best[p].clamp(0.0, 1.0)).sum::<f64>() / live.len() as f64).min(1.0)
}

/// Mean share of each record's `k` nearest neighbours by `encoded` similarity whose plaintext
/// similarity reaches that of its `k`-th nearest by plaintext (so plaintext ties count in).
fn neighbourhood_overlap(encoded: &[f64], plain: &[f64], m: usize, k: usize) -> f64 {
    let k = k.min(m.saturating_sub(1));
    if k == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for i in 0..m {
        let others: Vec<usize> = (0..m).filter(|&j| j != i).collect();
        let mut by_encoded = others.clone();
        by_encoded.sort_unstable_by(|&a, &b| {
            encoded[i * m + b]
                .total_cmp(&encoded[i * m + a])
                .then(a.cmp(&b))
        });
        let mut by_plain: Vec<f64> = others.iter().map(|&j| plain[i * m + j]).collect();
        by_plain.sort_unstable_by(|a, b| b.total_cmp(a));
        let kth = by_plain[k - 1];
        let hits = by_encoded[..k]
            .iter()
            .filter(|&&j| plain[i * m + j] >= kth)
            .count();
        total += hits as f64 / k as f64;
    }
    total / m as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_rank(x: &[f64], y: &[f64], expected: f64) {
        let r = rank_correlation(x, y);
        assert!((r - expected).abs() < 1e-12, "{x:?} {y:?}: {r}");
    }

    #[test]
    fn rank_correlations() {
        check_rank(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0], 1.0);
        check_rank(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0], -1.0);
        check_rank(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0], 0.0);
        check_rank(&[1.0, 1.0, 2.0, 2.0], &[1.0, 1.0, 2.0, 2.0], 1.0);
        check_rank(&[], &[], 0.0);
    }

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [2.5, 0.0, 2.5, 1.0]);
    }

    #[test]
    fn perfectly_co_occurring_positions_score_one() {
        // Positions 0 and 1 always together, 2 and 3 always together, 4-7 never set.
        let rows: Vec<Vec<u64>> = [0b1100_0000u8, 0b0011_0000, 0b1111_0000, 0]
            .iter()
            .map(|&b| to_words(&[b]))
            .collect();
        assert_eq!(co_occurrence(&rows, 8), 1.0);
        // Independent positions: 0 and 1 over the four combinations.
        let rows: Vec<Vec<u64>> = [0b0000_0000u8, 0b1000_0000, 0b0100_0000, 0b1100_0000]
            .iter()
            .map(|&b| to_words(&[b]))
            .collect();
        assert_eq!(co_occurrence(&rows, 8), 0.0);
    }

    #[test]
    fn filters_of_unequal_length_do_not_panic() {
        let plaintext: Vec<PlaintextRecord> = ["ab", "cd"]
            .iter()
            .map(|v| PlaintextRecord {
                value: (*v).to_owned(),
                tokens: vec![(*v).to_owned()],
            })
            .collect();
        let p = vulnerability_profile(
            &[vec![0xff; 16], vec![0x0f]],
            &plaintext,
            ProfileParams::default(),
        );
        assert_eq!(p.records, 2);
    }

    #[test]
    fn empty_input_profiles_to_zero() {
        assert_eq!(
            vulnerability_profile(&[], &[], ProfileParams::default()),
            VulnerabilityProfile::default()
        );
    }
}
