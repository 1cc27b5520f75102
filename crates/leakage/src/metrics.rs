//! What an attack achieved and what the linkage achieved, measured against the ground truth.
//!
//! Attack success follows the PPRL attack literature (Christen et al. 2017/2018; Vidanage et
//! al. 2020): a target (an encoded record or field value) is *re-identified 1-to-1* when the
//! attacker names exactly one candidate and it is right, and *1-to-m* when the attacker names
//! at most `m` candidates and the right one is among them. Precision is over the guesses the
//! attacker made; the disclosure risk is Vatsalan et al.'s (2014) probability of suspicion
//! `1 / |candidates|` of the right candidate, averaged over all targets (0 where the right one
//! is not named).

/// Dice similarity `2|a ∧ b| / (|a| + |b|)` of two filters of equal length (0 for two empty
/// filters).
#[must_use]
pub fn dice(a: &[u8], b: &[u8]) -> f64 {
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

/// An attacker's answer for one target: its candidates, best first (empty: no guess).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Guess {
    /// Candidate indices (records of the reference, or values of a dictionary).
    pub candidates: Vec<usize>,
    /// The attacker's confidence in its best candidate, in `[0, 1]`.
    pub confidence: f64,
}

impl Guess {
    /// A guess of one candidate.
    #[must_use]
    pub fn one(candidate: usize, confidence: f64) -> Self {
        Self {
            candidates: vec![candidate],
            confidence,
        }
    }
}

/// Attack success against the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AttackScore {
    /// Targets attacked.
    pub targets: usize,
    /// Targets with exactly one candidate.
    pub guessed_1to1: usize,
    /// ... of which the candidate is right.
    pub correct_1to1: usize,
    /// Targets with between 1 and `m` candidates.
    pub guessed_1tom: usize,
    /// ... of which one candidate is right.
    pub correct_1tom: usize,
    /// Mean probability of suspicion of the right candidate.
    pub disclosure_risk: f64,
}

impl AttackScore {
    /// Scores `guesses` (one per target) with `is_right(target, candidate)`, counting 1-to-m
    /// re-identifications for candidate lists of at most `m`.
    #[must_use]
    pub fn measure(guesses: &[Guess], m: usize, is_right: impl Fn(usize, usize) -> bool) -> Self {
        let mut s = Self {
            targets: guesses.len(),
            ..Self::default()
        };
        let mut risk = 0.0;
        for (t, g) in guesses.iter().enumerate() {
            let n = g.candidates.len();
            if n == 0 {
                continue;
            }
            let right = g.candidates.iter().any(|&c| is_right(t, c));
            if right {
                risk += 1.0 / n as f64;
            }
            if n == 1 {
                s.guessed_1to1 += 1;
                s.correct_1to1 += usize::from(right);
            }
            if n <= m {
                s.guessed_1tom += 1;
                s.correct_1tom += usize::from(right);
            }
        }
        s.disclosure_risk = ratio_f(risk, s.targets);
        s
    }

    /// Share of targets re-identified 1-to-1.
    #[must_use]
    pub fn reidentified(&self) -> f64 {
        ratio(self.correct_1to1, self.targets)
    }

    /// Share of targets re-identified 1-to-m.
    #[must_use]
    pub fn reidentified_1tom(&self) -> f64 {
        ratio(self.correct_1tom, self.targets)
    }

    /// Share of 1-to-1 guesses that are right (0 without guesses).
    #[must_use]
    pub fn precision(&self) -> f64 {
        ratio(self.correct_1to1, self.guessed_1to1)
    }
}

/// Linkage quality of a set of links against the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkageScore {
    /// Links made.
    pub links: usize,
    /// Links between records of the same person.
    pub correct: usize,
    /// Links of a victim record that has a true partner to someone else: the wrong-person
    /// links of the My Number review.
    pub mislinks: usize,
    /// Pairs in the ground truth.
    pub true_pairs: usize,
}

impl LinkageScore {
    /// Precision.
    #[must_use]
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.links)
    }

    /// Recall.
    #[must_use]
    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.true_pairs)
    }

    /// F-measure (harmonic mean of precision and recall, 0 when both are 0).
    #[must_use]
    pub fn f_measure(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Share of links that join a record with a true partner to another person.
    #[must_use]
    pub fn mislink_rate(&self) -> f64 {
        ratio(self.mislinks, self.links)
    }
}

/// Links `left` to `right` one-to-one by Dice similarity at least `threshold`, best pairs
/// first (ties by index): the anonlink-style greedy solver of `clk-exchange`.
#[must_use]
pub fn link_greedy(left: &[Vec<u8>], right: &[Vec<u8>], threshold: f64) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, a) in left.iter().enumerate() {
        for (j, b) in right.iter().enumerate() {
            let s = dice(a, b);
            if s >= threshold {
                pairs.push((s, i, j));
            }
        }
    }
    greedy_one_to_one(pairs, left.len(), right.len())
}

/// One-to-one assignment of scored pairs `(score, i, j)`, highest score first.
pub(crate) fn greedy_one_to_one(
    mut pairs: Vec<(f64, usize, usize)>,
    left: usize,
    right: usize,
) -> Vec<(usize, usize)> {
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut used_l, mut used_r) = (vec![false; left], vec![false; right]);
    let mut out = Vec::new();
    for (_, i, j) in pairs {
        if !used_l[i] && !used_r[j] {
            used_l[i] = true;
            used_r[j] = true;
            out.push((i, j));
        }
    }
    out
}

/// Scores links `(reference, victim)` with `same_person` and the victims' partners.
#[must_use]
pub fn score_links(
    links: &[(usize, usize)],
    true_pairs: &[(usize, usize)],
    same_person: impl Fn(usize, usize) -> bool,
) -> LinkageScore {
    let mut has_partner = std::collections::HashSet::new();
    for &(_, v) in true_pairs {
        has_partner.insert(v);
    }
    let correct = links.iter().filter(|&&(r, v)| same_person(r, v)).count();
    let mislinks = links
        .iter()
        .filter(|&&(r, v)| !same_person(r, v) && has_partner.contains(&v))
        .count();
    LinkageScore {
        links: links.len(),
        correct,
        mislinks,
        true_pairs: true_pairs.len(),
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn ratio_f(a: f64, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(guesses: &[&[usize]], expected: (usize, usize, usize, usize, f64)) {
        let guesses: Vec<Guess> = guesses
            .iter()
            .map(|c| Guess {
                candidates: c.to_vec(),
                confidence: 1.0,
            })
            .collect();
        // Target t's right candidate is t.
        let s = AttackScore::measure(&guesses, 2, |t, c| t == c);
        assert_eq!(
            (
                s.guessed_1to1,
                s.correct_1to1,
                s.guessed_1tom,
                s.correct_1tom
            ),
            (expected.0, expected.1, expected.2, expected.3)
        );
        assert!(
            (s.disclosure_risk - expected.4).abs() < 1e-12,
            "{}",
            s.disclosure_risk
        );
    }

    #[test]
    fn attack_scores() {
        check(&[&[0], &[1], &[2]], (3, 3, 3, 3, 1.0));
        check(&[&[1], &[], &[2, 0]], (1, 0, 2, 1, 0.5 / 3.0));
        check(&[&[0, 1, 2], &[0, 1, 2], &[5]], (1, 0, 1, 0, 2.0 / 9.0));
        check(&[], (0, 0, 0, 0, 0.0));
    }

    #[test]
    fn dice_values() {
        assert_eq!(dice(&[0b1111_0000], &[0b1111_0000]), 1.0);
        assert_eq!(dice(&[0b1100_0000], &[0b0110_0000]), 0.5);
        assert_eq!(dice(&[0], &[0]), 0.0);
    }

    #[test]
    fn greedy_linkage_and_its_score() {
        let left = vec![vec![0b1111_0000], vec![0b0000_1111], vec![0b1000_0001]];
        let right = vec![vec![0b0000_1110], vec![0b1111_0000], vec![0b0011_1100]];
        let links = link_greedy(&left, &right, 0.5);
        assert_eq!(links, vec![(0, 1), (1, 0)]);
        // Truth: 0-1 (linked), 1-2 and 2-0: victim 0's partner is reference 2, so the link
        // 1-0 joins it to the wrong person.
        let truth = [(0, 1), (1, 2), (2, 0)];
        let s = score_links(&links, &truth, |r, v| truth.contains(&(r, v)));
        assert_eq!((s.links, s.correct, s.mislinks), (2, 1, 1));
        assert_eq!(s.precision(), 0.5);
        assert!((s.recall() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.f_measure() - 0.4).abs() < 1e-12);
    }
}
