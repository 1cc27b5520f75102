//! The graph matching attack (Vidanage, Christen, Ranbaduge & Schnell, CIKM 2020; revisited
//! by Schäfer et al. with embeddings and Procrustes alignment): whoever sees the pairwise
//! similarities of the encodings (a linkage unit, the comparing party of `clk-exchange`)
//! re-encodes its own overlapping plaintext with the same parameters under a key of its own,
//! computes the same similarity graph, and matches the two graphs node to node. The key is
//! never needed: a similarity-preserving encoding preserves the graph.
//!
//! This implementation keeps the method's two stages and replaces the node embeddings by
//! features that need no training, in the spirit of the original's "similarity neighbourhood"
//! features:
//! 1. *Neighbourhood profiles*: each node's `profile` highest similarities, sorted, and the
//!    share of nodes above a ladder of similarity thresholds. Nodes are matched one-to-one by
//!    the L1 distance of their profiles; the mutual best matches with the widest margin become
//!    anchors.
//! 2. *Anchor refinement* (the role Procrustes alignment plays for embeddings): each node is
//!    described by its similarities to the anchors, which is close to an exact fingerprint
//!    once most anchors are right; the one-to-one matching is redone on that description, and
//!    the most confident half of it becomes the next round's anchors.
//!
//! The final guess per victim node is its reference node in the last one-to-one matching, with
//! confidence `1 − distance`.

use crate::metrics::{Guess, dice, greedy_one_to_one};

/// The attack's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphParams {
    /// Highest similarities kept in a node's profile.
    pub profile: usize,
    /// Share of nodes taken as anchors after the profile matching.
    pub first_anchors: f64,
    /// Anchor-refinement rounds.
    pub rounds: usize,
    /// At most this many anchors (bounds the work per round to `n² · max_anchors`).
    pub max_anchors: usize,
}

impl Default for GraphParams {
    fn default() -> Self {
        Self {
            profile: 20,
            first_anchors: 0.05,
            rounds: 8,
            max_anchors: 300,
        }
    }
}

/// The dense similarity graph of `filters`: Dice similarity of every pair (diagonal 1), row
/// major, as a linkage unit comparing all pairs would see it.
#[must_use]
pub fn similarity_graph(filters: &[Vec<u8>]) -> Vec<Vec<f32>> {
    let n = filters.len();
    let mut g = vec![vec![1.0f32; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let s = dice(&filters[i], &filters[j]) as f32;
            g[i][j] = s;
            g[j][i] = s;
        }
    }
    g
}

const LADDER: [f32; 7] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

fn profiles(graph: &[Vec<f32>], top: usize) -> Vec<Vec<f32>> {
    let n = graph.len().max(1) as f32;
    graph
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut others: Vec<f32> = row
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &s)| s)
                .collect();
            others.sort_unstable_by(|a, b| b.total_cmp(a));
            let mut p: Vec<f32> = others.iter().copied().take(top).collect();
            p.resize(top, 0.0);
            for t in LADDER {
                // Scaled so that a threshold count weighs like one similarity value.
                p.push(others.iter().filter(|&&s| s >= t).count() as f32 / n * 10.0);
            }
            p
        })
        .collect()
}

/// Matches by the L1 distance of the feature vectors: one-to-one, smallest distance first.
/// Returns `(victim, reference, distance, margin)` where the margin is the distance to the
/// victim's second-nearest reference minus the distance to its nearest.
fn match_features(victim: &[Vec<f32>], reference: &[Vec<f32>]) -> Vec<(usize, usize, f64, f64)> {
    let width = victim.first().map_or(1, Vec::len).max(1) as f64;
    let mut pairs = Vec::new();
    let mut margin = vec![0.0f64; victim.len()];
    for (v, fv) in victim.iter().enumerate() {
        let mut row: Vec<(f64, usize)> = reference
            .iter()
            .enumerate()
            .map(|(r, fr)| {
                let d: f32 = fv.iter().zip(fr).map(|(a, b)| (a - b).abs()).sum();
                (f64::from(d) / width, r)
            })
            .collect();
        row.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if row.len() > 1 {
            margin[v] = row[1].0 - row[0].0;
        }
        // Only each victim's nearest candidates compete (bounded work for the solver).
        for &(d, r) in row.iter().take(32) {
            pairs.push((-d, v, r));
        }
    }
    let dist: std::collections::HashMap<(usize, usize), f64> =
        pairs.iter().map(|&(d, v, r)| ((v, r), -d)).collect();
    greedy_one_to_one(pairs, victim.len(), reference.len())
        .into_iter()
        .map(|(v, r)| (v, r, dist[&(v, r)], margin[v]))
        .collect()
}

/// The graph matching attack: `victim` is the similarity graph of the victim's encodings,
/// `reference` that of the attacker's own encodings of its plaintext. Returns one guess per
/// victim node (an index into the reference graph), or no guess when the victim graph is
/// larger than the reference and the node was left over.
#[must_use]
pub fn graph_matching_attack(
    victim: &[Vec<f32>],
    reference: &[Vec<f32>],
    params: GraphParams,
) -> Vec<Guess> {
    let mut matching = match_features(
        &profiles(victim, params.profile),
        &profiles(reference, params.profile),
    );
    let mut share = params.first_anchors;
    for _ in 0..params.rounds {
        // The most confident matches are the anchors.
        matching.sort_by(|a, b| b.3.total_cmp(&a.3).then(a.0.cmp(&b.0)));
        let count = ((matching.len() as f64 * share).ceil() as usize)
            .clamp(1, matching.len().max(1))
            .min(params.max_anchors.max(1));
        let anchors: Vec<(usize, usize)> =
            matching.iter().take(count).map(|m| (m.0, m.1)).collect();
        if anchors.is_empty() {
            break;
        }
        let describe =
            |graph: &[Vec<f32>], pick: &dyn Fn(&(usize, usize)) -> usize| -> Vec<Vec<f32>> {
                graph
                    .iter()
                    .map(|row| anchors.iter().map(|a| row[pick(a)]).collect())
                    .collect()
            };
        let fv = describe(victim, &|a| a.0);
        let fr = describe(reference, &|a| a.1);
        matching = match_features(&fv, &fr);
        share = (share * 3.0).min(0.5);
    }
    let mut guesses = vec![Guess::default(); victim.len()];
    for (v, r, d, _) in matching {
        guesses[v] = Guess::one(r, (1.0 - d).clamp(0.0, 1.0));
    }
    guesses
}
