//! The one error type of the crate.

/// What can go wrong while building data, encodings or attacks.
///
/// Messages are lowercase, carry no trailing period and name what was wrong (the column, the
/// record, the parameter); they never contain key material.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LeakageError {
    /// The synthetic population could not be generated.
    #[error("synthetic data: {0}")]
    Synth(#[from] blindlink_synth::SynthError),
    /// A schema, a secret or a record was refused by the encoder.
    #[error("encoding: {0}")]
    Encoding(#[from] blindlink_encoding::EncodingError),
    /// The MinHash blocking refused its parameters.
    #[error("blocking: {0}")]
    Blocking(#[from] blindlink_matching::MatchingError),
    /// A line of a name-count table ([`crate::LinkedFiles::from_name_counts`]) was refused.
    #[error("name table line {line}: {reason}")]
    NameTable {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A line of a name frequency table ([`crate::NameFrequencies::parse`]) was refused.
    #[error("frequency table {table} line {line}: {reason}")]
    FrequencyTable {
        /// The table's name.
        table: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A population sample ([`crate::LinkedFiles::sample_names`]) was refused.
    #[error("population sample: {0}")]
    Sample(String),
    /// A generated file lacks a column the quasi-identifiers are built from.
    #[error("generated file has no column '{0}'")]
    MissingColumn(&'static str),
}
