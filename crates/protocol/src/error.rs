//! The one error type of the protocol crate.

use thiserror::Error;

/// Everything that can go wrong in a linkage session, as seen by one side.
///
/// Messages name what was wrong and where; they never contain the linkage secret or any other
/// key material, and text that came from the peer is sanitised before it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A message ended before a field it announced.
    #[error("truncated {what}: {needed} more bytes needed, {available} available")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// Bytes were left over after a complete message.
    #[error("trailing data after {what}: {extra} bytes")]
    TrailingData {
        /// The message that was complete.
        what: &'static str,
        /// How many bytes followed it.
        extra: usize,
    },
    /// A frame was empty (no kind byte).
    #[error("empty message (no kind byte)")]
    EmptyMessage,
    /// The first byte of a frame names no known message kind.
    #[error("unknown message kind 0x{0:02x}")]
    UnknownKind(u8),
    /// A message is larger than its kind allows.
    #[error("message of kind '{kind}' is {len} bytes, over its limit of {limit} bytes")]
    Oversize {
        /// The kind of the message.
        kind: &'static str,
        /// Its length so far.
        len: usize,
        /// The limit of its kind.
        limit: usize,
    },
    /// A field holds a value that is not allowed.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The two sides speak different protocol versions.
    #[error("protocol version differs: this side speaks {ours}, peer {theirs}")]
    VersionMismatch {
        /// This side's version.
        ours: u16,
        /// The peer's version.
        theirs: u16,
    },
    /// The two sides asked for different modes.
    #[error("mode differs: this side {ours}, peer {theirs}")]
    ModeMismatch {
        /// This side's mode.
        ours: String,
        /// The peer's mode.
        theirs: String,
    },
    /// The two sides encode different schemas.
    #[error("schema digest differs: {0}")]
    SchemaMismatch(String),
    /// The two sides use different encoding or matching parameters.
    #[error("parameter digest differs: {0}")]
    ParameterMismatch(String),
    /// The two sides hold different linkage secrets.
    #[error("linkage key differs (key-check value mismatch)")]
    KeyMismatch,
    /// The responder answered for a different session.
    #[error("session id differs: this side started {ours}, peer answered for {theirs}")]
    SessionMismatch {
        /// The session this side started.
        ours: String,
        /// The session the peer answered for.
        theirs: String,
    },
    /// A message arrived that the current state does not accept.
    #[error("unexpected message '{got}' {state}: expected {expected}")]
    UnexpectedMessage {
        /// The kind that arrived.
        got: &'static str,
        /// Where in the session this side was.
        state: &'static str,
        /// What it was waiting for.
        expected: &'static str,
    },
    /// The peer sent an abort message.
    #[error("peer aborted the session: {0}")]
    PeerAborted(String),
    /// The peer closed the session before it was complete.
    #[error("peer closed the session {0}")]
    PeerClosed(&'static str),
    /// This side cannot run as asked: its configuration or its own data is invalid. The text
    /// may name local settings and record ids, so it is for this side's operator only (see
    /// [`ProtocolError::peer_text`]).
    #[error("invalid {what}: {reason}")]
    Local {
        /// The setting or input concerned.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// The peer's bytes: malformed, oversize or out of order, or the peer gave up.
    Peer,
    /// Both sides are well-behaved but configured differently (found by the handshake, which
    /// compares the same two hellos on both sides).
    Agreement,
    /// This side's own configuration or data.
    Local,
}

/// The text sent to the peer in place of a local error's own text.
pub const LOCAL_ERROR_PEER_TEXT: &str = "the peer stopped because of a problem with its own configuration or data (details stay on its side)";

/// Coarse classes of [`ProtocolError`], so a transport can map them to its own status codes in
/// one place without matching every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The peer's bytes do not decode.
    Malformed,
    /// A message is over its size limit.
    Oversize,
    /// Both sides are well-behaved but configured differently (version, mode, schema, key...),
    /// or this side cannot run as configured ([`ProtocolError::Local`]; see
    /// [`ProtocolError::origin`] to tell them apart).
    Mismatch,
    /// A well-formed message arrived at the wrong time.
    OutOfOrder,
    /// The peer gave up (abort message or closed stream).
    PeerGone,
}

impl ProtocolError {
    /// The class of this error.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Truncated { .. }
            | Self::TrailingData { .. }
            | Self::EmptyMessage
            | Self::UnknownKind(_)
            | Self::Invalid { .. } => ErrorClass::Malformed,
            Self::Oversize { .. } => ErrorClass::Oversize,
            Self::VersionMismatch { .. }
            | Self::Local { .. }
            | Self::ModeMismatch { .. }
            | Self::SchemaMismatch(_)
            | Self::ParameterMismatch(_)
            | Self::KeyMismatch
            | Self::SessionMismatch { .. } => ErrorClass::Mismatch,
            Self::UnexpectedMessage { .. } => ErrorClass::OutOfOrder,
            Self::PeerAborted(_) | Self::PeerClosed(_) => ErrorClass::PeerGone,
        }
    }

    /// Whether the peer's bytes, a disagreement of the two configurations, or this side's own
    /// configuration or data caused the error.
    #[must_use]
    pub fn origin(&self) -> ErrorOrigin {
        match self {
            Self::Local { .. } => ErrorOrigin::Local,
            Self::VersionMismatch { .. }
            | Self::ModeMismatch { .. }
            | Self::SchemaMismatch(_)
            | Self::ParameterMismatch(_)
            | Self::KeyMismatch
            | Self::SessionMismatch { .. } => ErrorOrigin::Agreement,
            _ => ErrorOrigin::Peer,
        }
    }

    /// The text that is safe to send to the peer (an abort reason or a status message): the
    /// error itself when it is about the peer's bytes or about a difference both sides see,
    /// [`LOCAL_ERROR_PEER_TEXT`] for a local error, whose text may name local record ids and
    /// settings.
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{LOCAL_ERROR_PEER_TEXT, ProtocolError};
    /// let local = ProtocolError::Local { what: "party data", reason: "record 3 ('p-17')".into() };
    /// assert_eq!(local.peer_text(), LOCAL_ERROR_PEER_TEXT);
    /// assert_eq!(ProtocolError::KeyMismatch.peer_text(), ProtocolError::KeyMismatch.to_string());
    /// ```
    #[must_use]
    pub fn peer_text(&self) -> String {
        match self.origin() {
            ErrorOrigin::Local => LOCAL_ERROR_PEER_TEXT.to_owned(),
            ErrorOrigin::Peer | ErrorOrigin::Agreement => self.to_string(),
        }
    }
}

/// Replaces control characters in text that came from the peer, and cuts it to `max_chars`, so
/// that it is safe to put in a log line or an error message.
#[must_use]
pub fn sanitise_peer_text(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}
