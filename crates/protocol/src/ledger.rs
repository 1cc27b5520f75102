//! The disclosure ledger: for one side of one session, every message and byte that crossed the
//! wire in each direction and everything the side learned about the peer's data or let the peer
//! learn about its own. Each run writes it as JSON next to its outputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::message::MessageKind;
use crate::session::{Role, SessionId};
use crate::{Mode, ProtocolError};

/// Messages and bytes of one kind in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficCount {
    /// Number of messages.
    pub messages: u64,
    /// Number of frame bytes (kind byte included, transport overhead excluded).
    pub bytes: u64,
}

/// Traffic in one direction, in total and per message kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// All kinds together.
    pub total: TrafficCount,
    /// Per kind, keyed by the kind's name.
    pub by_kind: BTreeMap<String, TrafficCount>,
}

impl Traffic {
    fn record(&mut self, kind: MessageKind, bytes: usize) {
        let bytes = bytes as u64;
        self.total.messages += 1;
        self.total.bytes += bytes;
        let entry = self.by_kind.entry(kind.name().to_owned()).or_default();
        entry.messages += 1;
        entry.bytes += bytes;
    }
}

/// One thing a party learned about the other party's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Disclosure {
    /// The names and types of the fields the other party encodes (from the hello).
    Schema {
        /// Number of fields.
        fields: u64,
    },
    /// The size of the other party's set for one match key.
    SetSize {
        /// The match key (e.g. `my_number`, `name+dob+sex`).
        key: String,
        /// The set size.
        size: u64,
    },
    /// The size of the intersection for one match key.
    IntersectionSize {
        /// The match key.
        key: String,
        /// The intersection size.
        size: u64,
    },
    /// Which of the receiving party's own records matched, for one match key.
    MatchedRecords {
        /// The match key.
        key: String,
        /// How many of its own records it learned to be matched.
        count: u64,
    },
    /// `validate`: one score and one flag per linked pair; the score is the pair's
    /// Fellegi–Sunter match probability (the model and per-field weights are not disclosed).
    AgreementScores {
        /// Number of pairs scored.
        pairs: u64,
    },
    /// CLKs (Bloom-filter encodings) of the other party's records (`clk-exchange`): the
    /// receiver holds the linkage key and can decode them.
    Clks {
        /// Number of CLKs.
        count: u64,
    },
    /// Fuzzy: which matched band tokens (by number) each of the other party's candidate
    /// records holds, the records numbered in a random order.
    CandidateTokens {
        /// Number of candidate records.
        records: u64,
    },
    /// One compared pair (grouped PSI): the comparing party learned, per field, the number of
    /// tokens the two records share (and so whether the other party's field is present) and
    /// the other party's padded token count. The shared counts themselves stay in the
    /// comparing party's outputs (its scores).
    SharedTokenCounts {
        /// The pair, as both parties name it (`<link id>#<holder>` or `candidate <b>#<k>`).
        pair: String,
        /// Per field, the other party's padded token count (0: the field is missing).
        peer_padded: Vec<u32>,
    },
    /// One compared pair (grouped PSI): the other party learned the comparing party's padded
    /// token count per field.
    PaddedTokenCounts {
        /// The pair, as in [`Disclosure::SharedTokenCounts`].
        pair: String,
        /// Per field, the comparing party's padded token count (0: the field is missing).
        padded: Vec<u32>,
    },
}

/// A disclosure and the party it went to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureEntry {
    /// The party that learned it.
    pub learned_by: Role,
    /// What it learned.
    #[serde(flatten)]
    pub disclosure: Disclosure,
}

/// The ledger of one side of one session.
///
/// # Example
/// ```
/// use blindlink_protocol::*;
/// let mut ledger = DisclosureLedger::new(
///     SessionId::from_bytes([0; 16]), Role::Initiator, Mode::Cardinality, "registry");
/// ledger.record_sent(MessageKind::Ping, 12);
/// ledger.record_learned(Disclosure::IntersectionSize { key: "id".into(), size: 3 });
/// let json = ledger.to_json().unwrap();
/// assert!(json.contains("\"intersection_size\""));
/// assert_eq!(DisclosureLedger::from_json(&json).unwrap(), ledger);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureLedger {
    /// The session.
    pub session_id: SessionId,
    /// This side's role.
    pub role: Role,
    /// The mode.
    pub mode: Mode,
    /// The peer's identity as authenticated by the transport (certificate name).
    pub peer: String,
    /// What this side sent.
    pub sent: Traffic,
    /// What this side received.
    pub received: Traffic,
    /// What each party learned about the other's data, in the order it happened.
    pub disclosures: Vec<DisclosureEntry>,
}

impl DisclosureLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new(session_id: SessionId, role: Role, mode: Mode, peer: impl Into<String>) -> Self {
        Self {
            session_id,
            role,
            mode,
            peer: peer.into(),
            sent: Traffic::default(),
            received: Traffic::default(),
            disclosures: Vec::new(),
        }
    }

    /// Counts a frame this side sent.
    pub fn record_sent(&mut self, kind: MessageKind, frame_bytes: usize) {
        self.sent.record(kind, frame_bytes);
    }

    /// Counts a frame this side received.
    pub fn record_received(&mut self, kind: MessageKind, frame_bytes: usize) {
        self.received.record(kind, frame_bytes);
    }

    /// Notes something this side learned about the peer's data.
    pub fn record_learned(&mut self, disclosure: Disclosure) {
        self.disclosures.push(DisclosureEntry {
            learned_by: self.role,
            disclosure,
        });
    }

    /// Notes something this side let the peer learn about its data.
    pub fn record_revealed(&mut self, disclosure: Disclosure) {
        self.disclosures.push(DisclosureEntry {
            learned_by: self.role.peer(),
            disclosure,
        });
    }

    /// The ledger as pretty-printed JSON.
    ///
    /// # Errors
    /// Never in practice (every field serialises); kept fallible so callers need not unwrap.
    pub fn to_json(&self) -> Result<String, ProtocolError> {
        serde_json::to_string_pretty(self).map_err(|e| ProtocolError::Invalid {
            what: "ledger",
            reason: e.to_string(),
        })
    }

    /// Reads a ledger back from JSON.
    ///
    /// # Errors
    /// The text is not a ledger.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(text).map_err(|e| ProtocolError::Invalid {
            what: "ledger",
            reason: e.to_string(),
        })
    }
}
