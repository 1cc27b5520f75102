//! Popcount statistics of CLKs, overall and per field, like clkhash's `describe`: too few set
//! bits lose linkage quality, too many (close to half the filter) make CLKs less
//! distinguishable.

use crate::format::ClkSet;

/// Count, mean, standard deviation, minimum and maximum of a series of popcounts, with a
/// histogram in ten equal buckets over `0..=filter_bits`.
#[derive(Debug, Clone, PartialEq)]
pub struct PopcountStats {
    count: u64,
    mean: f64,
    m2: f64,
    min: u32,
    max: u32,
    filter_bits: usize,
    histogram: [u64; 10],
}

impl PopcountStats {
    /// Empty statistics for filters of `filter_bits` bits.
    #[must_use]
    pub fn new(filter_bits: usize) -> Self {
        Self {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: u32::MAX,
            max: 0,
            filter_bits: filter_bits.max(1),
            histogram: [0; 10],
        }
    }

    /// Adds one popcount (Welford's online update).
    pub fn add(&mut self, popcount: u32) {
        self.count += 1;
        let x = f64::from(popcount);
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(popcount);
        self.max = self.max.max(popcount);
        let bucket = (popcount as usize * 10 / (self.filter_bits + 1)).min(9);
        self.histogram[bucket] += 1;
    }

    /// Statistics of every CLK in a set.
    ///
    /// # Example
    /// ```
    /// use blindlink_encoding::{format::ClkSet, stats::PopcountStats};
    /// let mut clks = ClkSet::new(8)?;
    /// clks.push(&[0b1111_0000])?;
    /// clks.push(&[0b1100_0000])?;
    /// let stats = PopcountStats::of(&clks);
    /// assert_eq!((stats.count(), stats.mean(), stats.min(), stats.max()), (2, 3.0, 2, 4));
    /// # Ok::<(), blindlink_encoding::EncodingError>(())
    /// ```
    #[must_use]
    pub fn of(clks: &ClkSet) -> Self {
        let mut stats = Self::new(clks.filter_bits());
        for clk in clks.iter() {
            stats.add(crate::bits::popcount(clk));
        }
        stats
    }

    /// Number of popcounts.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean popcount.
    #[must_use]
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation (0 for fewer than two values).
    #[must_use]
    pub fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }

    /// Smallest popcount (0 when empty).
    #[must_use]
    pub fn min(&self) -> u32 {
        if self.count == 0 { 0 } else { self.min }
    }

    /// Largest popcount.
    #[must_use]
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Mean fraction of bits set.
    #[must_use]
    pub fn mean_fill(&self) -> f64 {
        self.mean / self.filter_bits as f64
    }

    /// Counts in ten equal buckets of `0..=filter_bits`.
    #[must_use]
    pub fn histogram(&self) -> &[u64; 10] {
        &self.histogram
    }

    /// Filter length the buckets refer to.
    #[must_use]
    pub fn filter_bits(&self) -> usize {
        self.filter_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std_dev_match_the_textbook() {
        let mut s = PopcountStats::new(100);
        for x in [2, 4, 4, 4, 5, 5, 7, 9] {
            s.add(x);
        }
        assert_eq!(s.mean(), 5.0);
        assert!((s.std_dev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min(), s.max(), s.count()), (2, 9, 8));
        assert_eq!(s.histogram()[0], 8);
    }
}
