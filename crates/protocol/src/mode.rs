//! The protocol modes: the rungs of the disclosure ladder, as the handshake names them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// A protocol mode: one rung of the disclosure ladder (see papers/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// ECDH-PSI on match keys; both sides learn only the intersection size.
    Cardinality,
    /// Mutual ECDH-PSI on a cascade of match keys; each side learns which of its records matched.
    Exact,
    /// `exact` on the ID, then a similarity check of quasi-identifiers for every linked pair.
    Validate,
    /// Private blocking through the PSI, then Dice on candidate CLKs only.
    Fuzzy,
    /// All CLKs to the comparing side (the baseline).
    ClkExchange,
}

impl Mode {
    /// Every mode, from least to most disclosure.
    pub const ALL: [Mode; 5] = [
        Mode::Cardinality,
        Mode::Exact,
        Mode::Validate,
        Mode::Fuzzy,
        Mode::ClkExchange,
    ];

    /// The name used on the command line, in configs and in ledgers.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cardinality => "cardinality",
            Self::Exact => "exact",
            Self::Validate => "validate",
            Self::Fuzzy => "fuzzy",
            Self::ClkExchange => "clk-exchange",
        }
    }

    /// Whether the mode runs a PSI on match keys (`cardinality`, `exact`, `validate`);
    /// `fuzzy` and `clk-exchange` link on CLKs alone and take none.
    #[must_use]
    pub const fn uses_match_keys(self) -> bool {
        matches!(self, Self::Cardinality | Self::Exact | Self::Validate)
    }

    pub(crate) const fn wire_byte(self) -> u8 {
        match self {
            Self::Cardinality => 1,
            Self::Exact => 2,
            Self::Validate => 3,
            Self::Fuzzy => 4,
            Self::ClkExchange => 5,
        }
    }

    pub(crate) fn from_wire_byte(byte: u8) -> Result<Self, ProtocolError> {
        Self::ALL
            .into_iter()
            .find(|m| m.wire_byte() == byte)
            .ok_or_else(|| ProtocolError::Invalid {
                what: "hello mode",
                reason: format!("unknown mode byte {byte}"),
            })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ProtocolError::Invalid {
                what: "mode",
                reason: format!(
                    "'{}' is not one of cardinality, exact, validate, fuzzy, clk-exchange",
                    crate::sanitise_peer_text(s, 40)
                ),
            })
    }
}
