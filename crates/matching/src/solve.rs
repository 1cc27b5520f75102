//! One-to-one solvers over candidate pairs.
//!
//! - [`greedy`]: anonlink's semantics. Pairs are taken from the highest score down (ties: lower
//!   `a`, then lower `b` first); a pair is kept when neither record is taken yet. Because a
//!   decision depends only on higher-ranked pairs, greedy at threshold `t` equals greedy at a
//!   lower threshold restricted to scores `>= t`, which makes threshold sweeps exact.
//! - [`optimal`]: a maximum-weight matching (sum of scores), for comparison. The candidate graph
//!   is split into connected components, each solved with the Hungarian algorithm on a dense
//!   matrix (missing pairs weigh 0, i.e. "leave unmatched"), bounded by a cell limit.

use std::collections::{HashMap, HashSet};

use crate::{Candidate, MatchingError};

/// Default cell limit (rows × cols) of one component for [`optimal`]: about 64 MB of matrix.
pub const DEFAULT_OPTIMAL_CELL_LIMIT: usize = 8_000_000;

fn check_scores(candidates: &[Candidate]) -> Result<(), MatchingError> {
    match candidates.iter().find(|c| !(0.0..=1.0).contains(&c.score)) {
        Some(c) => Err(MatchingError::InvalidScore {
            a: c.a,
            b: c.b,
            score: c.score,
        }),
        None => Ok(()),
    }
}

/// Greedy one-to-one matching; returns the kept pairs ordered by `a`.
///
/// # Errors
/// [`MatchingError::InvalidScore`] for a score that is not a number in [0, 1].
///
/// # Example
/// ```
/// use blindlink_matching::{Candidate, greedy};
/// let c = |a, b, score| Candidate { a, b, score };
/// let kept = greedy(&[c(0, 0, 0.9), c(0, 1, 0.95), c(1, 1, 0.8), c(1, 0, 0.85)])?;
/// assert_eq!(kept, [c(0, 1, 0.95), c(1, 0, 0.85)]);
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
pub fn greedy(candidates: &[Candidate]) -> Result<Vec<Candidate>, MatchingError> {
    check_scores(candidates)?;
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_unstable_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    let mut taken_a = HashSet::new();
    let mut taken_b = HashSet::new();
    let mut kept = Vec::new();
    for c in order {
        if !taken_a.contains(&c.a) && !taken_b.contains(&c.b) {
            taken_a.insert(c.a);
            taken_b.insert(c.b);
            kept.push(*c);
        }
    }
    kept.sort_unstable_by_key(|c| (c.a, c.b));
    Ok(kept)
}

/// Maximum-weight one-to-one matching (the sum of kept scores is as large as possible); returns
/// the kept pairs ordered by `a`. Duplicate pairs count once, with their highest score.
///
/// # Errors
/// [`MatchingError::InvalidScore`]; [`MatchingError::ComponentTooLarge`] when a connected
/// component of the candidate graph has more than `cell_limit` rows × cols.
///
/// # Example
/// ```
/// use blindlink_matching::{Candidate, optimal, DEFAULT_OPTIMAL_CELL_LIMIT};
/// let c = |a, b, score| Candidate { a, b, score };
/// // Greedy takes (0, 1) at 0.95 and leaves 1.7 in total; optimal finds 0.9 + 0.9.
/// let kept = optimal(&[c(0, 0, 0.9), c(0, 1, 0.95), c(1, 1, 0.9)], DEFAULT_OPTIMAL_CELL_LIMIT)?;
/// assert_eq!(kept, [c(0, 0, 0.9), c(1, 1, 0.9)]);
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
pub fn optimal(
    candidates: &[Candidate],
    cell_limit: usize,
) -> Result<Vec<Candidate>, MatchingError> {
    check_scores(candidates)?;
    // Dense local numbering: a records are nodes 0..na, b records na..na+nb.
    let mut a_ids: HashMap<usize, usize> = HashMap::new();
    let mut b_ids: HashMap<usize, usize> = HashMap::new();
    for c in candidates {
        let next = a_ids.len();
        a_ids.entry(c.a).or_insert(next);
        let next = b_ids.len();
        b_ids.entry(c.b).or_insert(next);
    }
    let na = a_ids.len();
    let mut components = UnionFind::new(na + b_ids.len());
    for c in candidates {
        components.union(a_ids[&c.a], na + b_ids[&c.b]);
    }
    let mut groups: HashMap<usize, Vec<&Candidate>> = HashMap::new();
    for c in candidates {
        groups
            .entry(components.find(a_ids[&c.a]))
            .or_default()
            .push(c);
    }
    let mut groups: Vec<Vec<&Candidate>> = groups.into_values().collect();
    // Determinism: solve components in a fixed order (HashMap order is not).
    groups.sort_unstable_by_key(|g| g.iter().map(|c| (c.a, c.b)).min());
    let mut kept = Vec::new();
    for group in groups {
        kept.extend(solve_component(&group, cell_limit)?);
    }
    kept.sort_unstable_by_key(|c| (c.a, c.b));
    Ok(kept)
}

fn solve_component(
    group: &[&Candidate],
    cell_limit: usize,
) -> Result<Vec<Candidate>, MatchingError> {
    let mut rows: Vec<usize> = group.iter().map(|c| c.a).collect();
    let mut cols: Vec<usize> = group.iter().map(|c| c.b).collect();
    rows.sort_unstable();
    rows.dedup();
    cols.sort_unstable();
    cols.dedup();
    if rows.len().saturating_mul(cols.len()) > cell_limit {
        return Err(MatchingError::ComponentTooLarge {
            rows: rows.len(),
            cols: cols.len(),
            limit: cell_limit,
        });
    }
    // The Hungarian algorithm below wants rows <= cols: transpose when needed.
    let transposed = rows.len() > cols.len();
    let (n, m) = if transposed {
        (cols.len(), rows.len())
    } else {
        (rows.len(), cols.len())
    };
    let mut weight = vec![0.0f64; n * m];
    for c in group {
        let r = rows.binary_search(&c.a).expect("row of its own component");
        let k = cols
            .binary_search(&c.b)
            .expect("column of its own component");
        let (i, j) = if transposed { (k, r) } else { (r, k) };
        let cell = &mut weight[i * m + j];
        *cell = cell.max(c.score);
    }
    let assignment = hungarian_max(n, m, &weight);
    let mut kept = Vec::new();
    for (i, j) in assignment.into_iter().enumerate() {
        let score = weight[i * m + j];
        if score > 0.0 {
            let (r, k) = if transposed { (j, i) } else { (i, j) };
            kept.push(Candidate {
                a: rows[r],
                b: cols[k],
                score,
            });
        }
    }
    Ok(kept)
}

/// Maximum-weight perfect assignment of `n` rows to distinct columns among `m >= n`, weights
/// row-major; returns the column of each row. The classic O(n² m) shortest augmenting path
/// formulation with row and column potentials, on costs `-weight`.
fn hungarian_max(n: usize, m: usize, weight: &[f64]) -> Vec<usize> {
    let cost = |i: usize, j: usize| -weight[(i - 1) * m + (j - 1)];
    // 1-based with column 0 as the virtual start, as in the textbook formulation.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut row_of = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        row_of[0] = i;
        let mut j0 = 0;
        let mut min_to = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = row_of[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let reduced = cost(i0, j) - u[i0] - v[j];
                    if reduced < min_to[j] {
                        min_to[j] = reduced;
                        way[j] = j0;
                    }
                    if min_to[j] < delta {
                        delta = min_to[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_to[j] -= delta;
                }
            }
            j0 = j1;
            if row_of[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut column = vec![0usize; n];
    for j in 1..=m {
        if row_of[j] != 0 {
            column[row_of[j] - 1] = j - 1;
        }
    }
    column
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, x: usize, y: usize) {
        let (rx, ry) = (self.find(x), self.find(y));
        if rx != ry {
            self.parent[rx.max(ry)] = rx.min(ry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(a: usize, b: usize, score: f64) -> Candidate {
        Candidate { a, b, score }
    }

    fn pairs(kept: &[Candidate]) -> Vec<(usize, usize)> {
        kept.iter().map(|c| (c.a, c.b)).collect()
    }

    fn check_greedy(input: &[Candidate], expected: &[(usize, usize)]) {
        assert_eq!(pairs(&greedy(input).unwrap()), expected, "{input:?}");
    }

    #[test]
    fn greedy_cases() {
        check_greedy(&[], &[]);
        check_greedy(&[c(0, 0, 0.9)], &[(0, 0)]);
        check_greedy(&[c(0, 0, 0.9), c(0, 1, 0.8), c(1, 0, 0.8)], &[(0, 0)]);
        check_greedy(&[c(0, 0, 0.9), c(0, 1, 0.95), c(1, 1, 0.9)], &[(0, 1)]);
        // Ties: lower a first, then lower b.
        check_greedy(&[c(1, 0, 0.8), c(0, 0, 0.8)], &[(0, 0)]);
        check_greedy(
            &[c(0, 1, 0.8), c(0, 0, 0.8), c(1, 1, 0.8)],
            &[(0, 0), (1, 1)],
        );
        check_greedy(
            &[c(2, 5, 0.7), c(3, 5, 0.7), c(3, 4, 0.7)],
            &[(2, 5), (3, 4)],
        );
        // Duplicated pairs are harmless.
        check_greedy(&[c(0, 0, 0.9), c(0, 0, 0.9)], &[(0, 0)]);
    }

    /// anonlink 0.15.3's greedy_solve on 300 random candidate sets full of ties
    /// (scripts/anonlink_greedy_vectors.py), candidates listed in shuffled order.
    #[test]
    fn greedy_equals_anonlink_on_golden_vectors() {
        let text = include_str!("../tests/data/anonlink_greedy.txt");
        let triple = |t: &str| -> Vec<f64> { t.split(',').map(|x| x.parse().unwrap()).collect() };
        for (line, case) in text.lines().enumerate() {
            let (left, right) = case.split_once(" => ").unwrap();
            let input: Vec<Candidate> = left
                .split_whitespace()
                .map(|t| {
                    let v = triple(t);
                    c(v[0] as usize, v[1] as usize, v[2])
                })
                .collect();
            let expected: Vec<(usize, usize)> = right
                .split_whitespace()
                .map(|t| {
                    let v = triple(t);
                    (v[0] as usize, v[1] as usize)
                })
                .collect();
            assert_eq!(
                pairs(&greedy(&input).unwrap()),
                expected,
                "line {}",
                line + 1
            );
        }
        assert_eq!(text.lines().count(), 300);
    }

    #[test]
    fn optimal_cases() {
        let check = |input: &[Candidate], expected: &[(usize, usize)]| {
            let got = optimal(input, DEFAULT_OPTIMAL_CELL_LIMIT).unwrap();
            assert_eq!(pairs(&got), expected, "{input:?}");
        };
        check(&[], &[]);
        check(
            &[c(0, 0, 0.9), c(0, 1, 0.95), c(1, 1, 0.9)],
            &[(0, 0), (1, 1)],
        );
        check(&[c(0, 0, 0.9), c(0, 1, 0.8)], &[(0, 0)]);
        check(&[c(0, 5, 0.9), c(1, 5, 0.8), c(2, 5, 0.95)], &[(2, 5)]);
        check(&[c(7, 1, 0.5), c(9, 3, 0.6)], &[(7, 1), (9, 3)]);
    }

    #[test]
    fn bad_inputs() {
        for score in [f64::NAN, -0.1, 1.5] {
            let err = greedy(&[c(1, 2, score)]).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("candidate pair (1, 2) has score {score}, expected a number in [0, 1]")
            );
        }
        let dense: Vec<Candidate> = (0..3)
            .flat_map(|a| (0..4).map(move |b| c(a, b, 0.5)))
            .collect();
        assert_eq!(
            optimal(&dense, 11).unwrap_err().to_string(),
            "optimal assignment: a connected group of 3 x 4 candidate records exceeds the limit of 11 cells; raise the threshold or use the greedy solver"
        );
        assert_eq!(optimal(&dense, 12).unwrap().len(), 3);
    }

    fn total(kept: &[Candidate]) -> f64 {
        kept.iter().map(|c| c.score).sum()
    }

    /// Best total over all one-to-one subsets, by exhaustive search.
    fn brute_best(candidates: &[Candidate]) -> f64 {
        fn go(rest: &[Candidate], used_a: &mut Vec<usize>, used_b: &mut Vec<usize>) -> f64 {
            let Some((first, rest)) = rest.split_first() else {
                return 0.0;
            };
            let mut best = go(rest, used_a, used_b);
            if !used_a.contains(&first.a) && !used_b.contains(&first.b) {
                used_a.push(first.a);
                used_b.push(first.b);
                best = best.max(first.score + go(rest, used_a, used_b));
                used_a.pop();
                used_b.pop();
            }
            best
        }
        go(candidates, &mut Vec::new(), &mut Vec::new())
    }

    fn one_to_one(kept: &[Candidate]) -> bool {
        let mut a: Vec<_> = kept.iter().map(|c| c.a).collect();
        let mut b: Vec<_> = kept.iter().map(|c| c.b).collect();
        a.sort_unstable();
        b.sort_unstable();
        a.windows(2).all(|w| w[0] != w[1]) && b.windows(2).all(|w| w[0] != w[1])
    }

    proptest! {
        #[test]
        fn optimal_is_optimal_and_greedy_is_at_least_half(
            edges in prop::collection::btree_map((0usize..5, 0usize..6), 1u32..=100, 0..14)
        ) {
            let candidates: Vec<Candidate> =
                edges.iter().map(|(&(a, b), &s)| c(a, b, f64::from(s) / 100.0)).collect();
            let best = optimal(&candidates, DEFAULT_OPTIMAL_CELL_LIMIT).unwrap();
            let greedy = greedy(&candidates).unwrap();
            prop_assert!(one_to_one(&best) && one_to_one(&greedy));
            prop_assert!((total(&best) - brute_best(&candidates)).abs() < 1e-9);
            prop_assert!(total(&greedy) <= total(&best) + 1e-9);
            prop_assert!(2.0 * total(&greedy) >= total(&best) - 1e-9);
        }
    }
}
