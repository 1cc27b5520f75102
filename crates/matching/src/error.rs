//! The one error type of the matching crate.

/// Everything that can go wrong while matching; messages are lowercase and say what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchingError {
    /// A filter length that the store cannot hold.
    #[error("filter length of {bits} bits is not between 1 and {max}")]
    FilterLength {
        /// The rejected length.
        bits: usize,
        /// The largest supported length.
        max: usize,
    },
    /// A filter whose byte length disagrees with the store's filter length.
    #[error("filter {index} has {len} bytes, expected {expected} ({bits} bits)")]
    ClkLength {
        /// 0-based index of the filter.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The expected length in bytes.
        expected: usize,
        /// The store's filter length in bits.
        bits: usize,
    },
    /// Two data sets encoded with different filter lengths cannot be compared.
    #[error("filter lengths differ: a has {a_bits}-bit filters, b has {b_bits}-bit filters")]
    MismatchedFilterLengths {
        /// Filter length of data set a.
        a_bits: usize,
        /// Filter length of data set b.
        b_bits: usize,
    },
    /// A Dice threshold outside (0, 1].
    #[error("dice threshold {value} is not in (0, 1]")]
    InvalidThreshold {
        /// The rejected value.
        value: f64,
    },
    /// `top-k` of zero keeps nothing.
    #[error("top-k must be at least 1")]
    ZeroTopK,
    /// Unusable LSH blocking parameters.
    #[error(
        "lsh blocking needs 1 to {max_bands} bands and 1 to {max_bits} bits per band (at most the filter length), got bands={bands}, bits={bits}"
    )]
    InvalidLshParameters {
        /// Requested number of bands.
        bands: usize,
        /// Requested bits per band.
        bits: usize,
        /// Largest supported number of bands.
        max_bands: usize,
        /// Largest supported bits per band.
        max_bits: usize,
    },
    /// A MinHash blocking shape out of range.
    #[error(
        "minhash blocking needs 1 to {max_bands} bands of 1 to {max_rows} minima, got {bands} bands of {rows}"
    )]
    InvalidMinHashParameters {
        /// Requested number of bands.
        bands: usize,
        /// Requested minima per band.
        rows: usize,
        /// Largest supported number of bands.
        max_bands: usize,
        /// Largest supported minima per band.
        max_rows: usize,
    },
    /// Blocked pairs used with data sets other than the ones they were made for.
    #[error("blocked pairs were made for {blocked_a} x {blocked_b} records, not {len_a} x {len_b}")]
    BlocksMismatch {
        /// Records of a the blocks were made for.
        blocked_a: usize,
        /// Records of b the blocks were made for.
        blocked_b: usize,
        /// Records of a given.
        len_a: usize,
        /// Records of b given.
        len_b: usize,
    },
    /// A similarity score that is not a number in [0, 1].
    #[error("candidate pair ({a}, {b}) has score {score}, expected a number in [0, 1]")]
    InvalidScore {
        /// Index into data set a.
        a: usize,
        /// Index into data set b.
        b: usize,
        /// The rejected score.
        score: f64,
    },
    /// The optimal solver works on connected components of the candidate graph; one was too big.
    #[error(
        "optimal assignment: a connected group of {rows} x {cols} candidate records exceeds the limit of {limit} cells; raise the threshold or use the greedy solver"
    )]
    ComponentTooLarge {
        /// Records of data set a in the component.
        rows: usize,
        /// Records of data set b in the component.
        cols: usize,
        /// The limit on rows x cols.
        limit: usize,
    },
    /// A threshold sweep that is empty or not increasing.
    #[error("threshold sweep {start}:{end}:{step} must have 0 < start <= end <= 1 and step > 0")]
    InvalidSweep {
        /// First threshold.
        start: f64,
        /// Last threshold.
        end: f64,
        /// Distance between thresholds.
        step: f64,
    },
    /// A Fellegi–Sunter comparison declared wrongly (levels, bounds, vetoes, fixed m/u).
    #[error("comparison of field '{field}': {reason}")]
    InvalidComparison {
        /// The field (as named in the schema).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Per-field token counts that cannot come from one compared pair.
    #[error("field '{field}': {reason}")]
    InvalidCounts {
        /// The field (as named in the schema).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Fellegi–Sunter estimation or scoring that cannot proceed.
    #[error("fellegi-sunter: {reason}")]
    FellegiSunter {
        /// What is wrong.
        reason: String,
    },
}
