//! The disclosure ledger: for one side of one session, every message and byte that crossed the
//! wire in each direction and everything the side learned about the peer's data or let the peer
//! learn about its own. Each run writes it as JSON next to its outputs.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// How both parties name a compared pair: the `pair` of [`Disclosure::SharedTokenCounts`]
/// and [`Disclosure::PaddedTokenCounts`], written as text in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairName {
    /// `validate`: a linked record of the other party, by link id and its place among the
    /// link's records (`<link id in hex>#<holder>`).
    Link {
        /// The link id.
        id: [u8; 32],
        /// The record's place among the link's records.
        holder: u16,
    },
    /// `fuzzy`: the `k`-th candidate of the other party's candidate record `record`
    /// (`candidate <record>#<k>`).
    Candidate {
        /// The candidate record's number.
        record: u32,
        /// The candidate's place among that record's candidates.
        k: u32,
    },
}

impl fmt::Display for PairName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link { id, holder } => write!(f, "{}#{holder}", hex::encode(id)),
            Self::Candidate { record, k } => write!(f, "candidate {record}#{k}"),
        }
    }
}

/// One compared pair kept compactly: its name, who learned the shared counts, and its padded
/// sizes in [`PairLog::padded`].
#[derive(Debug, Clone, Copy)]
struct LoggedPair {
    name: PairName,
    /// The party that learned the shared counts; the other learned the padded sizes.
    comparing: Role,
}

/// The per-pair disclosures of a session, ~60 bytes a pair instead of two entries with their
/// own strings and vectors (~360 bytes): at a million compared pairs that is what decides
/// `validate`'s memory per record.
#[derive(Debug, Clone, Default)]
struct PairLog {
    /// Fields per pair (the same for every pair of a session).
    width: usize,
    pairs: Vec<LoggedPair>,
    /// Per pair, `width` padded sizes of the answering side then `width` of the comparing side.
    padded: Vec<u16>,
}

impl PairLog {
    /// Keeps the pair if it fits the compact form (both sides `width` fields, every size
    /// under 2¹⁶); `false` if it does not.
    fn push(&mut self, pair: LoggedPair, answerer: &[u32], querier: &[u32]) -> bool {
        let width = answerer.len();
        let fits = |v: &[u32]| v.iter().all(|&x| x <= u32::from(u16::MAX));
        if querier.len() != width
            || (!self.pairs.is_empty() && width != self.width)
            || !fits(answerer)
            || !fits(querier)
        {
            return false;
        }
        self.width = width;
        self.pairs.push(pair);
        // The sizes fit (checked above).
        self.padded
            .extend(answerer.iter().chain(querier).map(|&x| x as u16));
        true
    }

    /// The two entries of pair `p`: the shared counts, then the padded sizes.
    fn entry(&self, p: usize, second: bool) -> DisclosureEntry {
        let LoggedPair { name, comparing } = self.pairs[p];
        let start = p * 2 * self.width + if second { self.width } else { 0 };
        let sizes = self.padded[start..start + self.width]
            .iter()
            .map(|&x| u32::from(x))
            .collect();
        let pair = name.to_string();
        if second {
            DisclosureEntry {
                learned_by: comparing.peer(),
                disclosure: Disclosure::PaddedTokenCounts {
                    pair,
                    padded: sizes,
                },
            }
        } else {
            DisclosureEntry {
                learned_by: comparing,
                disclosure: Disclosure::SharedTokenCounts {
                    pair,
                    peer_padded: sizes,
                },
            }
        }
    }
}

/// One place in the ledger's order: a disclosure, or a run of compared pairs in the pair log.
#[derive(Debug, Clone)]
enum Item {
    Entry(DisclosureEntry),
    Pairs { start: usize, end: usize },
}

/// The disclosures of a ledger in the order they happened, per-pair ones kept compactly.
#[derive(Debug, Clone, Default)]
struct Disclosures {
    items: Vec<Item>,
    pairs: PairLog,
}

impl Disclosures {
    fn push(&mut self, entry: DisclosureEntry) {
        self.items.push(Item::Entry(entry));
    }

    fn push_pair(&mut self, pair: LoggedPair, answerer: &[u32], querier: &[u32]) {
        if self.pairs.push(pair, answerer, querier) {
            let p = self.pairs.pairs.len() - 1;
            match self.items.last_mut() {
                Some(Item::Pairs { end, .. }) if *end == p => *end = p + 1,
                _ => self.items.push(Item::Pairs {
                    start: p,
                    end: p + 1,
                }),
            }
            return;
        }
        let pair_text = pair.name.to_string();
        self.push(DisclosureEntry {
            learned_by: pair.comparing,
            disclosure: Disclosure::SharedTokenCounts {
                pair: pair_text.clone(),
                peer_padded: answerer.to_vec(),
            },
        });
        self.push(DisclosureEntry {
            learned_by: pair.comparing.peer(),
            disclosure: Disclosure::PaddedTokenCounts {
                pair: pair_text,
                padded: querier.to_vec(),
            },
        });
    }

    fn len(&self) -> usize {
        self.items
            .iter()
            .map(|item| match item {
                Item::Entry(_) => 1,
                Item::Pairs { start, end } => 2 * (end - start),
            })
            .sum()
    }

    fn iter(&self) -> DisclosureIter<'_> {
        DisclosureIter {
            disclosures: self,
            item: 0,
            half: 0,
        }
    }
}

/// The disclosures of a ledger, in order, each made whole (see
/// [`DisclosureLedger::disclosures`]).
#[derive(Debug, Clone)]
pub struct DisclosureIter<'a> {
    disclosures: &'a Disclosures,
    item: usize,
    /// Within a run of pairs: how many entries of it were given so far.
    half: usize,
}

impl Iterator for DisclosureIter<'_> {
    type Item = DisclosureEntry;

    fn next(&mut self) -> Option<DisclosureEntry> {
        loop {
            match self.disclosures.items.get(self.item)? {
                Item::Entry(entry) => {
                    self.item += 1;
                    return Some(entry.clone());
                }
                Item::Pairs { start, end } => {
                    let p = start + self.half / 2;
                    if p >= *end {
                        self.item += 1;
                        self.half = 0;
                        continue;
                    }
                    let entry = self.disclosures.pairs.entry(p, self.half % 2 == 1);
                    self.half += 1;
                    return Some(entry);
                }
            }
        }
    }
}

/// Equal when they say the same disclosures in the same order, however each keeps them.
impl PartialEq for Disclosures {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Disclosures {}

impl Serialize for Disclosures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Disclosures {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<DisclosureEntry>::deserialize(deserializer)?;
        Ok(Self {
            items: entries.into_iter().map(Item::Entry).collect(),
            pairs: PairLog::default(),
        })
    }
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
    /// What each party learned about the other's data, in the order it happened (read with
    /// [`DisclosureLedger::disclosures`]).
    disclosures: Disclosures,
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
            disclosures: Disclosures::default(),
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

    /// Notes a disclosure as it stands (e.g. one read from another ledger).
    pub fn push_disclosure(&mut self, entry: DisclosureEntry) {
        self.disclosures.push(entry);
    }

    /// Notes one compared pair (grouped PSI), the same on both sides: the comparing side
    /// learned each field's shared-token count and the other side's padded sizes
    /// (`answerer_padded`: a [`Disclosure::SharedTokenCounts`]); the other side learned the
    /// comparing side's padded sizes (`querier_padded`: a [`Disclosure::PaddedTokenCounts`]).
    /// `comparing`: whether this side is the comparing one. Kept in ~60 bytes, not two
    /// entries: a session may compare millions of pairs.
    pub fn record_pair(
        &mut self,
        name: PairName,
        comparing: bool,
        answerer_padded: &[u32],
        querier_padded: &[u32],
    ) {
        let comparing = if comparing {
            self.role
        } else {
            self.role.peer()
        };
        self.disclosures.push_pair(
            LoggedPair { name, comparing },
            answerer_padded,
            querier_padded,
        );
    }

    /// What each party learned about the other's data, in the order it happened.
    #[must_use]
    pub fn disclosures(&self) -> DisclosureIter<'_> {
        self.disclosures.iter()
    }

    /// The number of disclosures ([`DisclosureLedger::disclosures`] gives this many).
    #[must_use]
    pub fn disclosure_count(&self) -> usize {
        self.disclosures.len()
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
