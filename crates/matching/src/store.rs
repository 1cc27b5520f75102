//! The CLK store: all filters of one data set in one contiguous, 64-byte-aligned allocation,
//! with their popcounts computed once.

use crate::MatchingError;

/// Largest supported filter length in bits. The SIMD kernels pack four intersection counts into
/// 16-bit fields, so a count must stay below 65,536; 16,384 bits is far above any CLK in use.
pub const MAX_FILTER_BITS: usize = 16_384;

/// 512 bits, aligned to a cache line: the unit the kernels load. A filter occupies a whole number
/// of lines; the words past its length are zero, which changes neither popcounts nor
/// intersections.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Line(pub(crate) [u64; 8]);

/// The filters of one data set, ready for comparison.
///
/// Bit `i` of a filter is bit `7 - i % 8` of byte `i / 8` (the most significant bit first, as
/// clkhash and anonlink serialise them).
///
/// # Example
/// ```
/// use blindlink_matching::ClkStore;
/// let mut filters = vec![0u8; 2 * 64];
/// filters[0] = 0b1010_0000;
/// let store = ClkStore::from_bytes(512, &filters)?;
/// assert_eq!((store.len(), store.popcount(0), store.popcount(1)), (2, 2, 0));
/// assert!(store.bit(0, 0) && !store.bit(0, 1) && store.bit(0, 2));
/// # Ok::<(), blindlink_matching::MatchingError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClkStore {
    filter_bits: usize,
    lines_per_clk: usize,
    lines: Vec<Line>,
    popcounts: Vec<u32>,
}

impl ClkStore {
    /// An empty store for filters of `filter_bits` bits.
    ///
    /// # Errors
    /// [`MatchingError::FilterLength`] unless `1 <= filter_bits <=` [`MAX_FILTER_BITS`].
    /// Any length works; a filter takes `ceil(filter_bits / 8)` bytes and bits past
    /// `filter_bits` in its last byte must be zero (as clkhash and the encoder write them).
    pub fn new(filter_bits: usize) -> Result<Self, MatchingError> {
        if filter_bits == 0 || filter_bits > MAX_FILTER_BITS {
            return Err(MatchingError::FilterLength {
                bits: filter_bits,
                max: MAX_FILTER_BITS,
            });
        }
        Ok(Self {
            filter_bits,
            lines_per_clk: filter_bits.div_ceil(512),
            lines: Vec::new(),
            popcounts: Vec::new(),
        })
    }

    /// A store of the filters in `bytes`, concatenated, each `filter_bits / 8` bytes long.
    ///
    /// # Errors
    /// [`MatchingError::FilterLength`] for an unsupported length, [`MatchingError::ClkLength`]
    /// when `bytes` does not hold a whole number of filters.
    pub fn from_bytes(filter_bits: usize, bytes: &[u8]) -> Result<Self, MatchingError> {
        let mut store = Self::new(filter_bits)?;
        let per_clk = store.bytes_per_clk();
        if !bytes.len().is_multiple_of(per_clk) {
            return Err(MatchingError::ClkLength {
                index: bytes.len() / per_clk,
                len: bytes.len() % per_clk,
                expected: per_clk,
                bits: filter_bits,
            });
        }
        store.reserve(bytes.len() / per_clk);
        for clk in bytes.chunks_exact(per_clk) {
            store.push(clk)?;
        }
        Ok(store)
    }

    /// A store of the given filters, each exactly `filter_bits / 8` bytes long.
    ///
    /// # Errors
    /// As [`ClkStore::from_bytes`], naming the first filter of the wrong length.
    pub fn from_clks<'c>(
        filter_bits: usize,
        clks: impl IntoIterator<Item = &'c [u8]>,
    ) -> Result<Self, MatchingError> {
        let mut store = Self::new(filter_bits)?;
        for clk in clks {
            store.push(clk)?;
        }
        Ok(store)
    }

    /// Reserves room for `additional` more filters.
    pub fn reserve(&mut self, additional: usize) {
        self.lines.reserve(additional * self.lines_per_clk);
        self.popcounts.reserve(additional);
    }

    /// Appends one filter.
    ///
    /// # Errors
    /// [`MatchingError::ClkLength`] when `clk` is not `filter_bits / 8` bytes long.
    pub fn push(&mut self, clk: &[u8]) -> Result<(), MatchingError> {
        if clk.len() != self.bytes_per_clk() {
            return Err(MatchingError::ClkLength {
                index: self.len(),
                len: clk.len(),
                expected: self.bytes_per_clk(),
                bits: self.filter_bits,
            });
        }
        let mut popcount = 0;
        // A short last chunk is padded with zero bytes on the right (the low end of the
        // big-endian word), which keeps bit `i` at the same place for every length.
        let mut words = clk.chunks(8).map(|w| {
            let mut word = [0u8; 8];
            word[..w.len()].copy_from_slice(w);
            u64::from_be_bytes(word)
        });
        for _ in 0..self.lines_per_clk {
            let mut line = Line::default();
            for slot in &mut line.0 {
                *slot = words.next().unwrap_or(0);
                popcount += slot.count_ones();
            }
            self.lines.push(line);
        }
        self.popcounts.push(popcount);
        Ok(())
    }

    /// Number of filters.
    pub fn len(&self) -> usize {
        self.popcounts.len()
    }

    /// Whether the store holds no filter.
    pub fn is_empty(&self) -> bool {
        self.popcounts.is_empty()
    }

    /// Filter length in bits.
    pub fn filter_bits(&self) -> usize {
        self.filter_bits
    }

    /// Filter length in bytes, `ceil(filter_bits / 8)`.
    pub fn bytes_per_clk(&self) -> usize {
        self.filter_bits.div_ceil(8)
    }

    /// Number of set bits of filter `index`.
    ///
    /// # Panics
    /// If `index >= self.len()` (a caller's bug, never peer data).
    pub fn popcount(&self, index: usize) -> u32 {
        self.popcounts[index]
    }

    /// All popcounts, in record order.
    pub fn popcounts(&self) -> &[u32] {
        &self.popcounts
    }

    /// Whether bit `position` (`< filter_bits`) of filter `index` is set.
    ///
    /// # Panics
    /// If `index` or `position` is out of range (a caller's bug).
    pub fn bit(&self, index: usize, position: usize) -> bool {
        assert!(position < self.filter_bits, "bit position out of range");
        let word = self.clk_lines(index)[position / 512].0[(position % 512) / 64];
        word >> (63 - position % 64) & 1 == 1
    }

    /// Filter `index` as bytes, as it was pushed.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn to_bytes(&self, index: usize) -> Vec<u8> {
        self.clk_lines(index)
            .iter()
            .flat_map(|line| line.0)
            .flat_map(u64::to_be_bytes)
            .take(self.bytes_per_clk())
            .collect()
    }

    /// The store's filters in another order: `order[i]` is the old index of the new filter `i`.
    pub(crate) fn permuted(&self, order: &[usize]) -> Self {
        let mut lines = Vec::with_capacity(order.len() * self.lines_per_clk);
        let mut popcounts = Vec::with_capacity(order.len());
        for &old in order {
            lines.extend_from_slice(self.clk_lines(old));
            popcounts.push(self.popcounts[old]);
        }
        Self {
            filter_bits: self.filter_bits,
            lines_per_clk: self.lines_per_clk,
            lines,
            popcounts,
        }
    }

    pub(crate) fn lines_per_clk(&self) -> usize {
        self.lines_per_clk
    }

    pub(crate) fn clk_lines(&self, index: usize) -> &[Line] {
        &self.lines[index * self.lines_per_clk..(index + 1) * self.lines_per_clk]
    }

    /// The lines of filters `range`, contiguous.
    pub(crate) fn range_lines(&self, range: std::ops::Range<usize>) -> &[Line] {
        &self.lines[range.start * self.lines_per_clk..range.end * self.lines_per_clk]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_new(bits: usize, expected: Result<usize, &str>) {
        let got = ClkStore::new(bits)
            .map(|s| s.lines_per_clk())
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "filter_bits={bits}");
    }

    #[test]
    fn filter_lengths() {
        check_new(64, Ok(1));
        check_new(512, Ok(1));
        check_new(576, Ok(2));
        check_new(1024, Ok(2));
        check_new(2048, Ok(4));
        check_new(16_384, Ok(32));
        check_new(1000, Ok(2));
        check_new(1, Ok(1));
        let bad = |b| format!("filter length of {b} bits is not between 1 and 16384");
        check_new(0, Err(&bad(0)));
        check_new(16_385, Err(&bad(16_385)));
    }

    #[test]
    fn bytes_round_trip_and_popcounts() {
        let bytes: Vec<u8> = (0..3 * 72).map(|i| (i * 37 % 251) as u8).collect();
        let store = ClkStore::from_bytes(576, &bytes).unwrap();
        assert_eq!(store.len(), 3);
        let odd = ClkStore::from_bytes(264, &bytes[..3 * 33]).unwrap();
        assert_eq!(odd.len(), 3);
        for (i, clk) in bytes[..99].chunks(33).enumerate() {
            assert_eq!(odd.to_bytes(i), clk);
            assert_eq!(
                odd.popcount(i),
                clk.iter().map(|b| b.count_ones()).sum::<u32>()
            );
        }
        for (i, clk) in bytes.chunks(72).enumerate() {
            assert_eq!(store.to_bytes(i), clk);
            let ones: u32 = clk.iter().map(|b| b.count_ones()).sum();
            assert_eq!(store.popcount(i), ones);
            for pos in 0..576 {
                assert_eq!(store.bit(i, pos), clk[pos / 8] >> (7 - pos % 8) & 1 == 1);
            }
        }
    }

    #[test]
    fn ragged_input_is_rejected_with_its_position() {
        assert_eq!(
            ClkStore::from_bytes(512, &[0; 100])
                .unwrap_err()
                .to_string(),
            "filter 1 has 36 bytes, expected 64 (512 bits)"
        );
        let clks: [&[u8]; 2] = [&[0; 128], &[0; 127]];
        assert_eq!(
            ClkStore::from_clks(1024, clks).unwrap_err().to_string(),
            "filter 1 has 127 bytes, expected 128 (1024 bits)"
        );
    }

    #[test]
    fn lines_are_cache_line_aligned() {
        let store = ClkStore::from_bytes(1024, &[0xff; 128 * 3]).unwrap();
        for i in 0..3 {
            assert_eq!(store.clk_lines(i).as_ptr() as usize % 64, 0);
        }
    }
}
