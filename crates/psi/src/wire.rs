//! The messages of both protocols and their byte encoding.
//!
//! Every message starts with a version byte (`1`) and a kind byte, followed by little-endian
//! `u32` counts and flat arrays of 32-byte compressed ristretto255 points:
//!
//! | kind | message | body |
//! |---|---|---|
//! | 1 | [`BlindedSet`] | `n: u32`, `n × 32` bytes |
//! | 2 | [`MutualReply`] | `n: u32`, `m: u32`, `n × 32` (initiator's points, doubly blinded, in the initiator's order), `m × 32` (responder's points, blinded, shuffled) |
//! | 3 | [`ReblindedSet`] | `m: u32`, `m × 32` (responder's points, doubly blinded, in the responder's order) |
//! | 4 | [`CardinalityReply`] | `n: u32`, `n × 32` (initiator's points, doubly blinded, sorted), then a responder set: tag `0` raw (`m: u32`, `m × 32` sorted) or tag `1` Bloom filter (`len: u32`, `len` bytes, see [`crate::bloom`]) |
//! | 5 | [`crate::GroupedQuery`] | `g: u32`, `g × n_i: u32`, then each group's `n_i × 32` (see [`crate::grouped`]) |
//! | 6 | [`crate::GroupedReply`] | `g: u32`, `g × (n_i: u32, m_i: u32)`, then per group `n_i × 32` (the querier's points, doubly blinded, shuffled) and `m_i × 32` (the answerer's points, blinded, shuffled) |
//!
//! Decoding checks the version, the kind, every count against [`WireLimits`], the exact length
//! (no trailing bytes) and rejects the identity point (all-zero bytes). Whether 32 bytes are a
//! valid point is checked when a session consumes the message, where the points are decoded
//! anyway; an invalid point is then a [`PsiError::InvalidPoint`], never a panic. Because the
//! point arrays are flat, a transport may split them at any multiple of 32 bytes.

use curve25519_dalek::ristretto::CompressedRistretto;

use crate::bloom::BloomSet;
use crate::error::PsiError;

/// The wire format version this build reads and writes.
pub const WIRE_VERSION: u8 = 1;

const KIND_BLINDED_SET: u8 = 1;
const KIND_MUTUAL_REPLY: u8 = 2;
const KIND_REBLINDED_SET: u8 = 3;
const KIND_CARDINALITY_REPLY: u8 = 4;
pub(crate) const KIND_GROUPED_QUERY: u8 = 5;
pub(crate) const KIND_GROUPED_REPLY: u8 = 6;

pub(crate) const POINT_LEN: usize = 32;

/// Bounds applied while decoding a peer's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// Most points one point list may carry.
    pub max_elements: usize,
    /// Most bytes a Bloom filter may take.
    pub max_bloom_bytes: usize,
}

impl WireLimits {
    /// The largest encoded message these limits admit, for a transport that bounds a message
    /// before it has arrived whole: two full point lists (a [`MutualReply`]) or one list and a
    /// full Bloom filter (a [`CardinalityReply`]), plus headers.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::WireLimits;
    /// let limits = WireLimits { max_elements: 10, max_bloom_bytes: 100 };
    /// assert_eq!(limits.max_message_bytes(), 2 + 4 + 320 + 1 + 4 + 320);
    /// ```
    pub fn max_message_bytes(&self) -> usize {
        let list = 4 + POINT_LEN.saturating_mul(self.max_elements);
        let second = list.max(4usize.saturating_add(self.max_bloom_bytes));
        2usize
            .saturating_add(list)
            .saturating_add(1)
            .saturating_add(second)
    }
}

impl Default for WireLimits {
    /// 16 million elements per message (512 MiB of points) and a 256 MiB Bloom filter.
    fn default() -> Self {
        Self {
            max_elements: 1 << 24,
            max_bloom_bytes: 1 << 28,
        }
    }
}

/// The initiator's first message: its elements, hashed to the group, blinded with its secret
/// and shuffled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlindedSet {
    pub(crate) points: Vec<CompressedRistretto>,
}

/// The responder's answer in mutual PSI: the initiator's points blinded again (same order as
/// received) and the responder's own points, blinded and shuffled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualReply {
    pub(crate) initiator_doubled: Vec<CompressedRistretto>,
    pub(crate) responder_blinded: Vec<CompressedRistretto>,
}

/// The initiator's last message in mutual PSI: the responder's points blinded again, in the
/// order the responder sent them, so the responder learns which of its own elements matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReblindedSet {
    pub(crate) points: Vec<CompressedRistretto>,
}

/// The responder's answer in cardinality-only PSI: the initiator's points blinded again and
/// sorted (so their order says nothing), and the responder's set, raw or as a Bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardinalityReply {
    pub(crate) initiator_doubled: Vec<CompressedRistretto>,
    pub(crate) responder_set: ResponderSet,
}

/// How the responder's blinded set travels in cardinality-only PSI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderSet {
    /// Every blinded point, sorted: exact, 32 bytes per element.
    Raw(Vec<CompressedRistretto>),
    /// A Bloom filter of the blinded points: smaller, with a bounded false-positive rate.
    Bloom(BloomSet),
}

impl BlindedSet {
    const NAME: &'static str = "blinded set";

    /// Number of points carried.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the message carries no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The blinded points, in the order sent.
    pub fn points(&self) -> &[CompressedRistretto] {
        &self.points
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(KIND_BLINDED_SET, 4 + POINT_LEN * self.points.len());
        put_points(&mut out, &self.points);
        out
    }

    /// Parses wire bytes.
    ///
    /// # Errors
    /// A truncated or oversize message, trailing bytes, a wrong version or kind, or the
    /// identity point.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::{BlindedSet, PsiError, WireLimits};
    /// let err = BlindedSet::decode(&[1, 1, 1, 0, 0], &WireLimits::default()).unwrap_err();
    /// assert!(matches!(err, PsiError::Truncated { .. }));
    /// ```
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, PsiError> {
        let mut reader = Reader::new(Self::NAME, bytes, KIND_BLINDED_SET)?;
        let count = reader.count(limits.max_elements)?;
        let points = reader.points(count)?;
        reader.finish()?;
        Ok(Self { points })
    }
}

impl MutualReply {
    const NAME: &'static str = "mutual reply";

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let total = 8 + POINT_LEN * (self.initiator_doubled.len() + self.responder_blinded.len());
        let mut out = header(KIND_MUTUAL_REPLY, total);
        put_count(&mut out, self.initiator_doubled.len());
        put_count(&mut out, self.responder_blinded.len());
        out.extend(self.initiator_doubled.iter().flat_map(|p| p.to_bytes()));
        out.extend(self.responder_blinded.iter().flat_map(|p| p.to_bytes()));
        out
    }

    /// Parses wire bytes.
    ///
    /// # Errors
    /// As [`BlindedSet::decode`].
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, PsiError> {
        let mut reader = Reader::new(Self::NAME, bytes, KIND_MUTUAL_REPLY)?;
        let doubled = reader.count(limits.max_elements)?;
        let blinded = reader.count(limits.max_elements)?;
        let initiator_doubled = reader.points(doubled)?;
        let responder_blinded = reader.points_from(blinded, doubled)?;
        reader.finish()?;
        Ok(Self {
            initiator_doubled,
            responder_blinded,
        })
    }
}

impl ReblindedSet {
    const NAME: &'static str = "reblinded set";

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(KIND_REBLINDED_SET, 4 + POINT_LEN * self.points.len());
        put_points(&mut out, &self.points);
        out
    }

    /// Parses wire bytes.
    ///
    /// # Errors
    /// As [`BlindedSet::decode`].
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, PsiError> {
        let mut reader = Reader::new(Self::NAME, bytes, KIND_REBLINDED_SET)?;
        let count = reader.count(limits.max_elements)?;
        let points = reader.points(count)?;
        reader.finish()?;
        Ok(Self { points })
    }
}

impl CardinalityReply {
    const NAME: &'static str = "cardinality reply";

    /// The doubly-blinded initiator points, sorted.
    pub fn initiator_doubled(&self) -> &[CompressedRistretto] {
        &self.initiator_doubled
    }

    /// The responder's set as sent.
    pub fn responder_set(&self) -> &ResponderSet {
        &self.responder_set
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(
            KIND_CARDINALITY_REPLY,
            4 + POINT_LEN * self.initiator_doubled.len(),
        );
        put_points(&mut out, &self.initiator_doubled);
        match &self.responder_set {
            ResponderSet::Raw(points) => {
                out.push(0);
                put_points(&mut out, points);
            }
            ResponderSet::Bloom(bloom) => {
                out.push(1);
                let bytes = bloom.filter_bytes();
                put_count(&mut out, bytes.len());
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// Parses wire bytes.
    ///
    /// # Errors
    /// As [`BlindedSet::decode`], plus [`PsiError::UnknownSetRepresentation`] and
    /// [`PsiError::InvalidBloomFilter`].
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, PsiError> {
        let mut reader = Reader::new(Self::NAME, bytes, KIND_CARDINALITY_REPLY)?;
        let doubled = reader.count(limits.max_elements)?;
        let initiator_doubled = reader.points(doubled)?;
        let responder_set = match reader.byte()? {
            0 => {
                let count = reader.count(limits.max_elements)?;
                ResponderSet::Raw(reader.points(count)?)
            }
            1 => {
                let len = reader.count_of(limits.max_bloom_bytes, "bytes")?;
                ResponderSet::Bloom(BloomSet::from_filter_bytes(reader.take(len)?)?)
            }
            found => {
                return Err(PsiError::UnknownSetRepresentation {
                    message: Self::NAME,
                    found,
                });
            }
        };
        reader.finish()?;
        Ok(Self {
            initiator_doubled,
            responder_set,
        })
    }
}

pub(crate) fn header(kind: u8, body: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + body);
    out.push(WIRE_VERSION);
    out.push(kind);
    out
}

pub(crate) fn put_count(out: &mut Vec<u8>, count: usize) {
    // Counts are bounded by `WireLimits` (far below 2^32) before any message is built.
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
}

fn put_points(out: &mut Vec<u8>, points: &[CompressedRistretto]) {
    put_count(out, points.len());
    out.extend(points.iter().flat_map(|p| p.to_bytes()));
}

/// The one reader every decoder goes through: bounds, exact lengths, no trailing bytes.
pub(crate) struct Reader<'a> {
    message: &'static str,
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(message: &'static str, bytes: &'a [u8], kind: u8) -> Result<Self, PsiError> {
        let mut reader = Self {
            message,
            bytes,
            position: 0,
        };
        let version = reader.byte()?;
        if version != WIRE_VERSION {
            return Err(PsiError::UnsupportedVersion {
                message,
                found: version,
                expected: WIRE_VERSION,
            });
        }
        let found = reader.byte()?;
        if found != kind {
            return Err(PsiError::WrongMessageKind {
                message,
                expected: kind,
                found,
            });
        }
        Ok(reader)
    }

    /// A reader over a slice already taken from a message (no header).
    pub(crate) fn sub(message: &'static str, bytes: &'a [u8]) -> Self {
        Self {
            message,
            bytes,
            position: 0,
        }
    }

    /// Which message this reads.
    pub(crate) fn message(&self) -> &'static str {
        self.message
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], PsiError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.position..end];
                self.position = end;
                Ok(slice)
            }
            None => Err(PsiError::Truncated {
                message: self.message,
                expected: self.position.saturating_add(len),
                actual: self.bytes.len(),
            }),
        }
    }

    /// A little-endian `u32` with no bound (the caller checks it).
    pub(crate) fn raw_u32(&mut self) -> Result<u32, PsiError> {
        let raw = self.take(4)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    pub(crate) fn byte(&mut self) -> Result<u8, PsiError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn count(&mut self, limit: usize) -> Result<usize, PsiError> {
        self.count_of(limit, "elements")
    }

    pub(crate) fn count_of(&mut self, limit: usize, what: &'static str) -> Result<usize, PsiError> {
        let raw = self.take(4)?;
        let count = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > limit {
            return Err(PsiError::TooManyElements {
                message: self.message,
                what,
                count: count as u64,
                limit: limit as u64,
            });
        }
        Ok(count)
    }

    fn points(&mut self, count: usize) -> Result<Vec<CompressedRistretto>, PsiError> {
        self.points_from(count, 0)
    }

    /// Reads `count` points; `first_index` numbers them within the message for errors.
    fn points_from(
        &mut self,
        count: usize,
        first_index: usize,
    ) -> Result<Vec<CompressedRistretto>, PsiError> {
        let len = count.saturating_mul(POINT_LEN);
        let raw = self.take(len)?;
        raw.chunks_exact(POINT_LEN)
            .enumerate()
            .map(|(i, chunk)| {
                let mut bytes = [0u8; POINT_LEN];
                bytes.copy_from_slice(chunk);
                if bytes == [0u8; POINT_LEN] {
                    return Err(PsiError::IdentityPoint {
                        message: self.message,
                        index: first_index + i,
                    });
                }
                Ok(CompressedRistretto(bytes))
            })
            .collect()
    }

    pub(crate) fn finish(self) -> Result<(), PsiError> {
        let extra = self.bytes.len() - self.position;
        if extra > 0 {
            return Err(PsiError::TrailingBytes {
                message: self.message,
                extra,
            });
        }
        Ok(())
    }
}
