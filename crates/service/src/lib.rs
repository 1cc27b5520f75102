//! The gRPC transport of blindlink: the only crate that knows protobuf, tonic and TLS.
//!
//! A linkage session is one bidirectional `Linkage.Session` stream (see
//! `proto/blindlink/v1/linkage.proto`). The stream carries the framed messages of
//! `blindlink-protocol`, each split into chunks of at most [`Limits::max_chunk_bytes`]; the
//! session's state lives in one task per stream on each side, so one [`Responder`] serves many
//! initiators at once and nothing depends on the order of separate calls. After the handshake
//! the transport hands every message to a [`blindlink_protocol::SessionDriver`] (a protocol
//! mode), created on the server by a [`DriverFactory`]; the transport itself knows no mode.
//!
//! Connections use mutual TLS (rustls with the `ring` provider): the server requires a client
//! certificate signed by the configured CA and then authorises the peer by the DNS names in its
//! certificate against an allow-list. Plaintext is possible only on loopback addresses, behind
//! [`TransportSecurity::InsecureLoopback`]. Every limit is explicit ([`Limits`]): chunk and
//! message sizes, session deadline, idle timeout, number of concurrent sessions. Errors become
//! gRPC statuses in one place, [`ServiceError::to_status`]. The server also offers gRPC health
//! checking and server reflection, so `grpcurl` can list and probe it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::time::Duration;

mod accept;
mod client;
mod error;
mod framing;
mod link;
mod pki;
mod server;
mod tls;

/// Code generated from `proto/blindlink/v1/linkage.proto`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications
)]
pub mod pb {
    tonic::include_proto!("blindlink.v1");
}

/// The encoded descriptor set of the blindlink protos, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/blindlink_v1_descriptor.bin"));

pub use accept::OVERFLOW_CONNECTIONS;
pub use client::{Initiator, PeerEndpoint};
pub use error::ServiceError;
pub use pki::{DevPki, PartyCertificate, check_party_name};
pub use server::{DriverFactory, PingResponderFactory, Responder, ServerConfig, SessionReport};
pub use tls::{INSECURE_PEER_NAME, TlsCredentials, TransportSecurity, authorise_peer};

/// Chunks buffered per direction per session before the sender waits.
pub(crate) const CHANNEL_DEPTH: usize = 8;
/// How long a side tries to tell its peer why it is ending the session.
pub(crate) const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The explicit limits of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest chunk of a protocol message, in bytes (the gRPC message limit is this plus a
    /// little protobuf overhead).
    pub max_chunk_bytes: usize,
    /// Longest a whole session may take.
    pub session_deadline: Duration,
    /// Longest wait for the peer's next chunk. A dead peer is found sooner by the HTTP/2
    /// keep-alive pings (every 30 s, 20 s to answer); this bounds a live peer that computes,
    /// and one phase of a large session (fuzzy's blocking PSI at 100,000 records on a loaded
    /// 2-core machine) took more than two minutes.
    pub idle_timeout: Duration,
    /// Most sessions a server runs at once; more are refused with `ResourceExhausted`.
    pub max_concurrent_sessions: usize,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// Longest a unary call (server info, health) may take.
    pub request_timeout: Duration,
    /// Longest a server waits for a new connection's TLS handshake before closing it.
    pub handshake_timeout: Duration,
    /// Longest a server keeps a connection open that has no session running and no call.
    pub connection_idle_timeout: Duration,
    /// Most connections a server keeps open at once (in their TLS handshake or established);
    /// see [`OVERFLOW_CONNECTIONS`] for what happens beyond.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chunk_bytes: 1 << 20,
            session_deadline: Duration::from_secs(60 * 60),
            idle_timeout: Duration::from_secs(10 * 60),
            max_concurrent_sessions: 64,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            connection_idle_timeout: Duration::from_secs(60),
            max_connections: 128,
        }
    }
}

impl Limits {
    /// The gRPC message size limit that fits one chunk.
    #[must_use]
    pub fn max_grpc_message_bytes(&self) -> usize {
        self.max_chunk_bytes + 64
    }
}

/// A transport error with its causes, since tonic's own message is often just "transport
/// error".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
