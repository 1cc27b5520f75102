//! Session identifiers and the two roles of a session.

use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// The identifier of one linkage session: 16 random bytes chosen by the initiator, shown as 32
/// lowercase hex digits. It names the session in logs and ledgers and is bound into the
/// key-check values, so a key-check value from one session is useless in another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; SessionId::LEN]);

impl SessionId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// A fresh random session id.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; Self::LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The session id with these bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = ProtocolError;

    /// Parses 32 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; Self::LEN];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| ProtocolError::Invalid {
            what: "session id",
            reason: format!("expected 32 hex digits, got {} characters", s.len()),
        })?;
        Ok(Self(bytes))
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which end of the session a party is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The party that opens the session (the gRPC client, e.g. the insurer).
    Initiator,
    /// The party that answers (the gRPC server, e.g. the registry).
    Responder,
}

impl Role {
    /// The other role.
    #[must_use]
    pub const fn peer(self) -> Self {
        match self {
            Self::Initiator => Self::Responder,
            Self::Responder => Self::Initiator,
        }
    }

    pub(crate) const fn wire_byte(self) -> u8 {
        match self {
            Self::Initiator => 1,
            Self::Responder => 2,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        })
    }
}
