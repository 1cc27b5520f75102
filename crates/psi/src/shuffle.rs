//! A Fisher–Yates shuffle over an explicit RNG, written here so that the permutation for a seed
//! is fixed by this crate and not by a dependency's version.

use rand_core::Rng;

/// A uniformly random permutation of `0..len`: `permutation[j]` is the index of the item sent
/// at position `j`.
pub(crate) fn random_permutation<R: Rng + ?Sized>(len: usize, rng: &mut R) -> Vec<usize> {
    let mut permutation: Vec<usize> = (0..len).collect();
    for upper in (1..len).rev() {
        let pick = uniform_below(rng, upper as u64 + 1) as usize;
        permutation.swap(upper, pick);
    }
    permutation
}

/// A uniform integer in `0..bound` (bound ≥ 1) by Lemire's multiply-and-reject method.
fn uniform_below<R: Rng + ?Sized>(rng: &mut R, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let wide = u128::from(rng.next_u64()) * u128::from(bound);
        if (wide as u64) >= threshold {
            return (wide >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn permutation_is_a_bijection_and_fixed_for_a_seed() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let permutation = random_permutation(1000, &mut rng);
        let mut sorted = permutation.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        let mut again = ChaCha20Rng::from_seed([7; 32]);
        assert_eq!(random_permutation(1000, &mut again), permutation);
        assert_ne!(permutation, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn every_position_is_reached() {
        // Each of 4 items lands in each of 4 slots over 400 shuffles; a biased shuffle that
        // never moves the last item would fail.
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut seen = [[0u32; 4]; 4];
        for _ in 0..400 {
            for (slot, &item) in random_permutation(4, &mut rng).iter().enumerate() {
                seen[item][slot] += 1;
            }
        }
        for row in seen {
            for count in row {
                assert!(count > 50, "{seen:?}");
            }
        }
    }

    #[test]
    fn empty_and_single() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        assert!(random_permutation(0, &mut rng).is_empty());
        assert_eq!(random_permutation(1, &mut rng), vec![0]);
    }
}
