//! The one error type of the service crate, and the one place where it becomes a gRPC status
//! (and a status from the peer becomes it again).

use std::net::SocketAddr;
use std::time::Duration;

use blindlink_protocol::{ErrorClass, ProtocolError, sanitise_peer_text};
use thiserror::Error;
use tonic::{Code, Status};

/// Everything that can end a session or keep a peer from starting one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceError {
    /// The protocol state machine refused a message or the hellos differ.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The peer ended the session with a gRPC status.
    #[error("peer ended the session ({code}): {message}")]
    PeerStatus {
        /// The status code's name, e.g. `PermissionDenied`.
        code: String,
        /// The peer's message, sanitised.
        message: String,
    },
    /// The peer presented no client certificate.
    #[error("peer presented no client certificate")]
    Unauthenticated,
    /// The peer's certificate names no identity on the allow-list.
    #[error("peer certificate names {presented}, none of which is on the allow-list")]
    NotAllowed {
        /// The names the certificate carries.
        presented: String,
    },
    /// Another session with the same id is running on this server.
    #[error("session id {0} is already in use on this server")]
    DuplicateSession(String),
    /// The server is already running as many sessions as it may.
    #[error("server is at its limit of {0} concurrent sessions")]
    Busy(usize),
    /// The connection came in over the server's connection limit.
    #[error("server is at capacity: all {0} connections are in use; try again later")]
    AtCapacity(usize),
    /// Plaintext was asked for together with an allow-list it cannot enforce.
    #[error(
        "refusing plaintext with an allow-list: insecure-loopback cannot authenticate peers, so \
         allowed_peers ({0}) would not be enforced; use mutual tls or leave allowed_peers empty"
    )]
    InsecureAllowList(String),
    /// A session or a wait for the next message took too long.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// A chunk was larger than allowed.
    #[error("chunk of {len} bytes is over the limit of {limit} bytes")]
    ChunkTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A gRPC message was larger than the transport accepts (found by tonic's decoder).
    #[error("message over the grpc size limit: {0}")]
    MessageTooLarge(String),
    /// Plaintext was asked for on an address that is not loopback.
    #[error(
        "refusing plaintext on non-loopback address {0} (insecure-loopback allows only 127.0.0.0/8 and ::1)"
    )]
    InsecureNotLoopback(SocketAddr),
    /// TLS material could not be used.
    #[error("tls configuration: {0}")]
    Tls(String),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Certificate(String),
    /// The connection or the server failed below the protocol.
    #[error("transport: {0}")]
    Transport(String),
}

impl ServiceError {
    /// The gRPC status that tells the peer about this error. Messages never carry secrets:
    /// no variant holds key material.
    #[must_use]
    pub fn to_status(&self) -> Status {
        let code = match self {
            Self::Protocol(e) => match e.class() {
                ErrorClass::Malformed => Code::InvalidArgument,
                ErrorClass::Oversize => Code::ResourceExhausted,
                ErrorClass::Mismatch | ErrorClass::OutOfOrder => Code::FailedPrecondition,
                ErrorClass::PeerGone => Code::Aborted,
            },
            Self::PeerStatus { .. } => Code::Aborted,
            Self::DuplicateSession(_) => Code::AlreadyExists,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::NotAllowed { .. } => Code::PermissionDenied,
            Self::Busy(_)
            | Self::AtCapacity(_)
            | Self::ChunkTooLarge { .. }
            | Self::MessageTooLarge(_) => Code::ResourceExhausted,
            Self::Timeout { .. } => Code::DeadlineExceeded,
            Self::InsecureNotLoopback(_)
            | Self::InsecureAllowList(_)
            | Self::Tls(_)
            | Self::Certificate(_)
            | Self::Transport(_) => Code::Internal,
        };
        Status::new(code, self.peer_text())
    }

    /// The text that may be sent to the peer (a status message or an abort reason): a local
    /// protocol error, whose text may name local record ids, becomes a generic sentence
    /// ([`ProtocolError::peer_text`]); every other error is about the peer or the transport.
    #[must_use]
    pub fn peer_text(&self) -> String {
        match self {
            Self::Protocol(e) => e.peer_text(),
            other => other.to_string(),
        }
    }

    /// The error a status on a stream or call stands for. Statuses that tonic made on this
    /// side (a failed connection, an over-long message) are told apart from the peer's own.
    #[must_use]
    pub fn from_peer_status(status: &Status) -> Self {
        if let Some(source) = std::error::Error::source(status) {
            let chain = crate::error_chain(source);
            return Self::Transport(if chain.contains(status.message()) {
                chain
            } else {
                format!("{}: {chain}", status.message())
            });
        }
        if status.code() == Code::OutOfRange {
            // tonic's decoder reports an over-long message as OutOfRange.
            let message = status.message();
            return Self::MessageTooLarge(
                message
                    .strip_prefix("Error, ")
                    .unwrap_or(message)
                    .to_owned(),
            );
        }
        Self::PeerStatus {
            code: format!("{:?}", status.code()),
            message: sanitise_peer_text(status.message(), 512),
        }
    }

    /// The gRPC code of the peer's status, if this error is one.
    #[must_use]
    pub fn peer_code(&self) -> Option<&str> {
        match self {
            Self::PeerStatus { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: ServiceError, expected: &str) {
        let status = error.to_status();
        assert_eq!(
            format!("{:?}: {}", status.code(), status.message()),
            expected
        );
    }

    #[test]
    fn one_place_maps_errors_to_statuses() {
        check(
            ProtocolError::EmptyMessage.into(),
            "InvalidArgument: empty message (no kind byte)",
        );
        check(
            ProtocolError::Oversize {
                kind: "ping",
                len: 9,
                limit: 8,
            }
            .into(),
            "ResourceExhausted: message of kind 'ping' is 9 bytes, over its limit of 8 bytes",
        );
        check(
            ProtocolError::KeyMismatch.into(),
            "FailedPrecondition: linkage key differs (key-check value mismatch)",
        );
        check(
            ProtocolError::UnexpectedMessage {
                got: "ping",
                state: "now",
                expected: "hello",
            }
            .into(),
            "FailedPrecondition: unexpected message 'ping' now: expected hello",
        );
        check(
            ProtocolError::PeerAborted("bye".into()).into(),
            "Aborted: peer aborted the session: bye",
        );
        // A local error may name local record ids: the peer gets a generic sentence.
        check(
            ProtocolError::Local {
                what: "record",
                reason: "record 'patient-17' has 3 keys".into(),
            }
            .into(),
            "FailedPrecondition: the peer stopped because of a problem with its own \
             configuration or data (details stay on its side)",
        );
        check(
            ServiceError::Unauthenticated,
            "Unauthenticated: peer presented no client certificate",
        );
        check(
            ServiceError::NotAllowed {
                presented: "'x'".into(),
            },
            "PermissionDenied: peer certificate names 'x', none of which is on the allow-list",
        );
        check(
            ServiceError::Busy(3),
            "ResourceExhausted: server is at its limit of 3 concurrent sessions",
        );
        check(
            ServiceError::AtCapacity(2),
            "ResourceExhausted: server is at capacity: all 2 connections are in use; try again \
             later",
        );
        check(
            ServiceError::InsecureAllowList("insurer".into()),
            "Internal: refusing plaintext with an allow-list: insecure-loopback cannot \
             authenticate peers, so allowed_peers (insurer) would not be enforced; use mutual tls \
             or leave allowed_peers empty",
        );
        check(
            ServiceError::Timeout {
                what: "session",
                after: Duration::from_secs(2),
            },
            "DeadlineExceeded: session timed out after 2s",
        );
    }

    #[test]
    fn statuses_from_the_peer() {
        let from = |status: Status| ServiceError::from_peer_status(&status).to_string();
        assert_eq!(
            from(Status::permission_denied("not you")),
            "peer ended the session (PermissionDenied): not you"
        );
        assert_eq!(
            from(Status::failed_precondition("line\nbreak")),
            "peer ended the session (FailedPrecondition): line?break"
        );
        assert_eq!(
            from(Status::out_of_range(
                "Error, decoded message length too large: found 9 bytes"
            )),
            "message over the grpc size limit: decoded message length too large: found 9 bytes"
        );
    }
}
