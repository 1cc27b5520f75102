//! The one error type of the crate.

use crate::normalise::NormaliseError;

/// Everything that can go wrong while parsing a schema, encoding a record or reading a CLK file.
///
/// Messages are lowercase, carry no trailing period and say where the problem is (schema
/// location, field, record index). They never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// A value was rejected by a normalisation step.
    #[error(transparent)]
    Normalise(#[from] NormaliseError),
    /// The schema is invalid; `location` is a TOML/JSON path such as `features[2].hashing`.
    #[error("{location}: {message}")]
    Schema {
        /// Where in the schema document the problem is.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Several independent schema problems (one per broken field), in document order.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    SchemaProblems(Vec<EncodingError>),
    /// A record's value for a field is not valid for the schema.
    #[error("field '{field}': {reason}")]
    InvalidValue {
        /// The field (CSV column) name.
        field: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// A record does not have the number of values the schema expects.
    #[error("record has {found} values when {expected} are expected")]
    RecordLength {
        /// Values the schema needs.
        expected: usize,
        /// Values the record has.
        found: usize,
    },
    /// The CSV header does not fit the schema.
    #[error("header: {0}")]
    Header(String),
    /// A CLK file is malformed.
    #[error("clk file: {0}")]
    ClkFile(String),
    /// The operating system's random number generator failed (BLIP's seed).
    #[error("os random number generator: {0}")]
    Randomness(String),
    /// The linkage secret cannot be used.
    #[error("linkage secret: {0}")]
    Secret(String),
}

impl EncodingError {
    pub(crate) fn schema(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Schema {
            location: location.into(),
            message: message.into(),
        }
    }

    /// `None` for no problems, the problem itself for one, [`Self::SchemaProblems`] for more.
    pub(crate) fn combine(mut problems: Vec<Self>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Self::SchemaProblems(problems)),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn clk_file(message: impl Into<String>) -> Self {
        Self::ClkFile(message.into())
    }
}
