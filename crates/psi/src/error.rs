//! The one error type of the crate.

/// Why a PSI step failed.
///
/// Messages name the message and the element index that was wrong; they never contain a
/// secret scalar, a point of the peer's set or an element.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PsiError {
    /// A message ended before its declared contents.
    #[error("{message} is truncated: expected {expected} bytes, got {actual}")]
    Truncated {
        /// Which message.
        message: &'static str,
        /// Bytes the header announced (or the minimum header size).
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// Bytes followed the end of a message.
    #[error("{message} has {extra} trailing bytes")]
    TrailingBytes {
        /// Which message.
        message: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The wire format version is not one this build speaks.
    #[error("{message} has wire version {found}, expected {expected}")]
    UnsupportedVersion {
        /// Which message.
        message: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build speaks.
        expected: u8,
    },
    /// The message kind byte names another message.
    #[error("expected {message} (kind {expected}), got message kind {found}")]
    WrongMessageKind {
        /// Which message was expected.
        message: &'static str,
        /// Its kind byte.
        expected: u8,
        /// The kind byte found.
        found: u8,
    },
    /// A count is larger than the configured limit.
    #[error("{message} announces {count} {what}, more than the limit of {limit}")]
    TooManyElements {
        /// Which message.
        message: &'static str,
        /// What was counted (elements, bytes).
        what: &'static str,
        /// The announced count.
        count: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A count does not match what this party sent earlier in the session.
    #[error("{message} carries {actual} points, expected {expected}")]
    CountMismatch {
        /// Which message.
        message: &'static str,
        /// The count this party sent.
        expected: usize,
        /// The count received.
        actual: usize,
    },
    /// Thirty-two bytes that are not the canonical encoding of a ristretto255 point.
    #[error("{message} has an invalid point encoding at index {index}")]
    InvalidPoint {
        /// Which message.
        message: &'static str,
        /// Position of the point in the message.
        index: usize,
    },
    /// The identity point, which no honest party ever sends.
    #[error("{message} has the identity point at index {index}")]
    IdentityPoint {
        /// Which message.
        message: &'static str,
        /// Position of the point in the message.
        index: usize,
    },
    /// A set-representation tag that is not raw (0) or Bloom filter (1).
    #[error("{message} has unknown set representation {found}")]
    UnknownSetRepresentation {
        /// Which message.
        message: &'static str,
        /// The tag found.
        found: u8,
    },
    /// A Bloom filter whose header is inconsistent or hostile.
    #[error("bloom filter is invalid: {reason}")]
    InvalidBloomFilter {
        /// What was wrong.
        reason: &'static str,
    },
    /// A false-positive rate outside the open interval (0, 1).
    #[error("false-positive rate must be in (0, 1), got {value}")]
    InvalidFalsePositiveRate {
        /// The rejected value.
        value: f64,
    },
    /// A match key name that is empty, too long or not printable ASCII.
    #[error("match key name is invalid: {reason}")]
    InvalidMatchKeyName {
        /// What was wrong.
        reason: &'static str,
    },
    /// A set larger than the configured limit was given to a session.
    #[error("the {party} set has {count} elements, more than the limit of {limit}")]
    SetTooLarge {
        /// Whose set.
        party: &'static str,
        /// The number of elements.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A group of a grouped message has more points than the limit.
    #[error("{message} group {group} has {size} points, more than the limit of {limit}")]
    GroupTooLarge {
        /// Which message.
        message: &'static str,
        /// Position of the group in the message.
        group: usize,
        /// The announced size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A group's padded size is not the top of a size bucket.
    #[error("{message} group {group} has {size} points, which is not the top of a size bucket")]
    GroupSizeNotBucket {
        /// Which message.
        message: &'static str,
        /// Position of the group in the message.
        group: usize,
        /// The size found.
        size: usize,
    },
    /// Thirty-two bytes in a group that are not the canonical encoding of a ristretto255 point.
    #[error("{message} group {group} has an invalid point encoding at index {index}")]
    InvalidGroupPoint {
        /// Which message.
        message: &'static str,
        /// Position of the group in the message.
        group: usize,
        /// Position of the point within the group.
        index: usize,
    },
    /// The identity point in a group.
    #[error("{message} group {group} has the identity point at index {index}")]
    IdentityGroupPoint {
        /// Which message.
        message: &'static str,
        /// Position of the group in the message.
        group: usize,
        /// Position of the point within the group.
        index: usize,
    },
    /// A point repeated within a group (an honest party never repeats one).
    #[error("{message} group {group} repeats at index {index} the point at index {first}")]
    DuplicateGroupPoint {
        /// Which message.
        message: &'static str,
        /// Position of the group in the message.
        group: usize,
        /// Position of the repeat within the group.
        index: usize,
        /// Position of the first copy within the group.
        first: usize,
    },
    /// A grouped message has another number of groups than this party.
    #[error("{message} has {actual} groups, expected {expected}")]
    GroupCountMismatch {
        /// Which message.
        message: &'static str,
        /// The number of groups this party has (or sent).
        expected: usize,
        /// The number received.
        actual: usize,
    },
    /// A group of the reply does not answer every point the query sent in it.
    #[error("{message} group {group} answers {actual} points, expected {expected}")]
    GroupSizeMismatch {
        /// Which message.
        message: &'static str,
        /// Position of the group.
        group: usize,
        /// The number of points sent.
        expected: usize,
        /// The number answered.
        actual: usize,
    },
    /// This party was given more groups than the limit.
    #[error("{count} own groups, more than the limit of {limit}")]
    TooManyOwnGroups {
        /// The number of groups.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// One of this party's groups pads to more points than the limit.
    #[error("own group {group} has {count} tokens, its padded size is above the limit of {limit}")]
    OwnGroupTooLarge {
        /// Position of the group.
        group: usize,
        /// Its token count.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A size-bucket scheme that is malformed.
    #[error("size buckets are invalid: {reason}")]
    InvalidSizeBuckets {
        /// What was wrong.
        reason: &'static str,
    },
    /// A cascade was given results that do not fit its plan.
    #[error("cascade: {reason}")]
    Cascade {
        /// What was inconsistent.
        reason: String,
    },
}

impl PsiError {
    /// The same error with its point index moved by `offset`: a point list checked on its own
    /// whose errors must be numbered within the whole message.
    pub(crate) fn with_index_offset(self, offset: usize) -> Self {
        match self {
            Self::InvalidPoint { message, index } => Self::InvalidPoint {
                message,
                index: index + offset,
            },
            Self::IdentityPoint { message, index } => Self::IdentityPoint {
                message,
                index: index + offset,
            },
            other => other,
        }
    }
}
