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
//! | 6 | [`crate::GroupedReply`] | `g: u32`, `g × (n_i: u32, m_i: u32)`, then per group `n_i × 32` (the querier's points, doubly blinded, sorted) and `m_i × 8` (the tags of the answerer's blinded points, sorted) |
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

/// Decodes a [`BlindedSet`], [`MutualReply`] or [`ReblindedSet`] from its bytes as they arrive,
/// piece by piece, into the points themselves: the message is never held as bytes, so
/// receiving it costs 32 bytes a point, not 64 (the bytes, then the points).
///
/// It applies every check of the whole-message decoders and reports the same error for the
/// same bytes, however they are cut: the header (version, kind, counts against
/// [`WireLimits`]) as soon as it has arrived, then, when [`Self::finish_blinded_set`] (or the
/// other `finish_*`) is called, a truncated list, the identity point, trailing bytes. Points
/// are stored only up to the announced counts; each list is reserved at its count when the
/// count arrives (within the limits), and its pages become resident only as points arrive.
///
/// # Example
/// ```
/// use blindlink_psi::{BlindedSet, MatchKeyName, MutualInitiator, PointsDecoder, WireLimits};
/// use rand_chacha::ChaCha20Rng;
/// use rand_core::SeedableRng;
/// let key = MatchKeyName::new("k").unwrap();
/// let (_, set) = MutualInitiator::start(&key, &["a", "b"], &mut ChaCha20Rng::from_seed([1; 32])).unwrap();
/// let bytes = set.encode();
/// let mut decoder = PointsDecoder::blinded_set(WireLimits::default());
/// for piece in bytes.chunks(5) {
///     decoder.push(piece).unwrap();
/// }
/// assert_eq!(decoder.finish_blinded_set().unwrap(), set);
/// ```
#[derive(Debug)]
pub struct PointsDecoder {
    message: &'static str,
    kind: u8,
    limits: WireLimits,
    /// The header bytes so far (version, kind, one `u32` count per list).
    header: Vec<u8>,
    header_len: usize,
    counts: Vec<usize>,
    lists: Vec<Vec<CompressedRistretto>>,
    /// The first identity point of each list (index within the message).
    identity: Vec<Option<usize>>,
    /// A point split across two pieces.
    partial: Vec<u8>,
    received: usize,
    trailing: usize,
}

impl PointsDecoder {
    fn new(message: &'static str, kind: u8, lists: usize, limits: WireLimits) -> Self {
        Self {
            message,
            kind,
            limits,
            header: Vec::with_capacity(2 + 4 * lists),
            header_len: 2 + 4 * lists,
            counts: Vec::with_capacity(lists),
            lists: (0..lists).map(|_| Vec::new()).collect(),
            identity: vec![None; lists],
            partial: Vec::with_capacity(POINT_LEN),
            received: 0,
            trailing: 0,
        }
    }

    /// A decoder of a [`BlindedSet`].
    pub fn blinded_set(limits: WireLimits) -> Self {
        Self::new(BlindedSet::NAME, KIND_BLINDED_SET, 1, limits)
    }

    /// A decoder of a [`MutualReply`].
    pub fn mutual_reply(limits: WireLimits) -> Self {
        Self::new(MutualReply::NAME, KIND_MUTUAL_REPLY, 2, limits)
    }

    /// A decoder of a [`ReblindedSet`].
    pub fn reblinded_set(limits: WireLimits) -> Self {
        Self::new(ReblindedSet::NAME, KIND_REBLINDED_SET, 1, limits)
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Takes the next piece of the message.
    ///
    /// # Errors
    /// A wrong version or kind, or a count over the limit, as soon as the header's bytes
    /// have arrived (the errors of the whole-message decoders).
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), PsiError> {
        self.received = self.received.saturating_add(bytes.len());
        while self.header.len() < self.header_len && !bytes.is_empty() {
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            self.check_header_field()?;
        }
        while !bytes.is_empty() {
            let Some(list) = self.open_list() else {
                self.trailing = self.trailing.saturating_add(bytes.len());
                return Ok(());
            };
            if !self.partial.is_empty() {
                let take = (POINT_LEN - self.partial.len()).min(bytes.len());
                self.partial.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.partial.len() == POINT_LEN {
                    let mut point = [0u8; POINT_LEN];
                    point.copy_from_slice(&self.partial);
                    self.partial.clear();
                    self.store(list, point);
                }
                continue;
            }
            let room = self.counts[list] - self.lists[list].len();
            let whole = (bytes.len() / POINT_LEN).min(room);
            self.reserve(list, whole);
            for raw in bytes[..whole * POINT_LEN].chunks_exact(POINT_LEN) {
                let mut point = [0u8; POINT_LEN];
                point.copy_from_slice(raw);
                self.store(list, point);
            }
            bytes = &bytes[whole * POINT_LEN..];
            if whole < room && !bytes.is_empty() {
                // Less than a point left: keep it for the next piece.
                self.partial.extend_from_slice(bytes);
                bytes = &[];
            }
        }
        Ok(())
    }

    /// The first list that still takes points.
    fn open_list(&self) -> Option<usize> {
        self.lists
            .iter()
            .zip(&self.counts)
            .position(|(points, &count)| points.len() < count)
    }

    /// Checks the header field whose last byte has just arrived.
    fn check_header_field(&mut self) -> Result<(), PsiError> {
        match self.header.len() {
            1 if self.header[0] != WIRE_VERSION => Err(PsiError::UnsupportedVersion {
                message: self.message,
                found: self.header[0],
                expected: WIRE_VERSION,
            }),
            2 if self.header[1] != self.kind => Err(PsiError::WrongMessageKind {
                message: self.message,
                expected: self.kind,
                found: self.header[1],
            }),
            n if n > 2 && (n - 2) % 4 == 0 => {
                let raw = &self.header[n - 4..n];
                let count = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                if count > self.limits.max_elements {
                    return Err(PsiError::TooManyElements {
                        message: self.message,
                        what: "elements",
                        count: count as u64,
                        limit: self.limits.max_elements as u64,
                    });
                }
                // The list's room at once, at its announced size (bounded by the limits):
                // grown piece by piece, it was copied and left freed blocks behind in the
                // allocator. A large block's pages are only made resident as points arrive,
                // so an announced count costs no memory until its bytes come.
                self.lists[self.counts.len()].reserve_exact(count);
                self.counts.push(count);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Room for `more` points in `list`: the vector grows by doubling, capped at the count,
    /// so it ends at its exact size and never runs ahead of the bytes by more than twice.
    fn reserve(&mut self, list: usize, more: usize) {
        let points = &mut self.lists[list];
        let needed = points.len() + more;
        if needed > points.capacity() {
            let target = needed.max(points.capacity() * 2).min(self.counts[list]);
            points.reserve_exact(target - points.len());
        }
    }

    fn store(&mut self, list: usize, point: [u8; POINT_LEN]) {
        let index_in_message: usize =
            self.counts[..list].iter().sum::<usize>() + self.lists[list].len();
        if point == [0u8; POINT_LEN] && self.identity[list].is_none() {
            self.identity[list] = Some(index_in_message);
        }
        if self.lists[list].len() == self.lists[list].capacity() {
            self.reserve(list, 1);
        }
        self.lists[list].push(CompressedRistretto(point));
    }

    /// The lists, after the checks the whole-message decoders make at the end, in their
    /// order: a truncated header or list, the identity point, trailing bytes.
    fn finish(self) -> Result<Vec<Vec<CompressedRistretto>>, PsiError> {
        let truncated = |expected: usize| PsiError::Truncated {
            message: self.message,
            expected,
            actual: self.received,
        };
        if self.header.len() < self.header_len {
            let expected = match self.header.len() {
                0 | 1 => self.header.len() + 1,
                n => 2 + (n - 2) / 4 * 4 + 4,
            };
            return Err(truncated(expected));
        }
        let mut position = self.header_len;
        for (list, points) in self.lists.iter().enumerate() {
            position = position.saturating_add(self.counts[list].saturating_mul(POINT_LEN));
            if points.len() < self.counts[list] {
                return Err(truncated(position));
            }
            if let Some(index) = self.identity[list] {
                return Err(PsiError::IdentityPoint {
                    message: self.message,
                    index,
                });
            }
        }
        if self.trailing > 0 {
            return Err(PsiError::TrailingBytes {
                message: self.message,
                extra: self.trailing,
            });
        }
        Ok(self.lists)
    }

    /// The [`BlindedSet`] once its last byte has arrived.
    ///
    /// # Errors
    /// As [`BlindedSet::decode`] (a decoder of another message: `WrongMessageKind`).
    pub fn finish_blinded_set(self) -> Result<BlindedSet, PsiError> {
        self.expect_kind(KIND_BLINDED_SET)?;
        let mut lists = self.finish()?;
        Ok(BlindedSet {
            points: lists.pop().unwrap_or_default(),
        })
    }

    /// The [`MutualReply`] once its last byte has arrived.
    ///
    /// # Errors
    /// As [`MutualReply::decode`].
    pub fn finish_mutual_reply(self) -> Result<MutualReply, PsiError> {
        self.expect_kind(KIND_MUTUAL_REPLY)?;
        let mut lists = self.finish()?.into_iter();
        Ok(MutualReply {
            initiator_doubled: lists.next().unwrap_or_default(),
            responder_blinded: lists.next().unwrap_or_default(),
        })
    }

    /// The [`ReblindedSet`] once its last byte has arrived.
    ///
    /// # Errors
    /// As [`ReblindedSet::decode`].
    pub fn finish_reblinded_set(self) -> Result<ReblindedSet, PsiError> {
        self.expect_kind(KIND_REBLINDED_SET)?;
        let mut lists = self.finish()?;
        Ok(ReblindedSet {
            points: lists.pop().unwrap_or_default(),
        })
    }

    fn expect_kind(&self, kind: u8) -> Result<(), PsiError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(PsiError::WrongMessageKind {
                message: self.message,
                expected: self.kind,
                found: kind,
            })
        }
    }
}

/// A mutual PSI message's bytes, produced a range at a time (the bytes [`BlindedSet::encode`]
/// and the others return, never all at once): its header, then its point lists.
pub trait EncodeRange {
    /// The length of the encoded message.
    fn encoded_len(&self) -> usize;

    /// Appends the encoded message's bytes `start..end` to `out`.
    fn encode_range(&self, start: usize, end: usize, out: &mut Vec<u8>);
}

fn encode_range_of(
    header: &[u8],
    lists: &[&[CompressedRistretto]],
    mut start: usize,
    end: usize,
    out: &mut Vec<u8>,
) {
    if start < header.len() {
        out.extend_from_slice(&header[start..end.min(header.len())]);
        start = header.len();
    }
    let mut list_start = header.len();
    for points in lists {
        let list_end = list_start + points.len() * POINT_LEN;
        if start < end && start < list_end {
            let from = start - list_start;
            let to = end.min(list_end) - list_start;
            let (first, last) = (from / POINT_LEN, to.div_ceil(POINT_LEN));
            for (i, point) in points[first..last].iter().enumerate() {
                let at = (first + i) * POINT_LEN;
                let lo = from.max(at) - at;
                let hi = to.min(at + POINT_LEN) - at;
                out.extend_from_slice(&point.as_bytes()[lo..hi]);
            }
            start = list_end.min(end);
        }
        list_start = list_end;
    }
}

fn counts_header(kind: u8, counts: &[usize]) -> Vec<u8> {
    let mut out = header(kind, 4 * counts.len());
    for &count in counts {
        put_count(&mut out, count);
    }
    out
}

impl EncodeRange for BlindedSet {
    fn encoded_len(&self) -> usize {
        2 + 4 + POINT_LEN * self.points.len()
    }

    fn encode_range(&self, start: usize, end: usize, out: &mut Vec<u8>) {
        let head = counts_header(KIND_BLINDED_SET, &[self.points.len()]);
        encode_range_of(&head, &[&self.points], start, end, out);
    }
}

impl EncodeRange for MutualReply {
    fn encoded_len(&self) -> usize {
        mutual_reply_encoded_len(&self.initiator_doubled, &self.responder_blinded)
    }

    fn encode_range(&self, start: usize, end: usize, out: &mut Vec<u8>) {
        mutual_reply_encode_range(
            &self.initiator_doubled,
            &self.responder_blinded,
            start,
            end,
            out,
        );
    }
}

fn mutual_reply_encoded_len(
    initiator_doubled: &[CompressedRistretto],
    responder_blinded: &[CompressedRistretto],
) -> usize {
    2 + 8 + POINT_LEN * (initiator_doubled.len() + responder_blinded.len())
}

fn mutual_reply_encode_range(
    initiator_doubled: &[CompressedRistretto],
    responder_blinded: &[CompressedRistretto],
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
) {
    let head = counts_header(
        KIND_MUTUAL_REPLY,
        &[initiator_doubled.len(), responder_blinded.len()],
    );
    encode_range_of(
        &head,
        &[initiator_doubled, responder_blinded],
        start,
        end,
        out,
    );
}

impl EncodeRange for ReblindedSet {
    fn encoded_len(&self) -> usize {
        2 + 4 + POINT_LEN * self.points.len()
    }

    fn encode_range(&self, start: usize, end: usize, out: &mut Vec<u8>) {
        let head = counts_header(KIND_REBLINDED_SET, &[self.points.len()]);
        encode_range_of(&head, &[&self.points], start, end, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `bytes` whole and in pieces of every size in `cuts`, and checks that both give
    /// the same message or the same error text.
    fn check(kind: u8, bytes: &[u8], expected: &str) {
        let limits = WireLimits {
            max_elements: 4,
            max_bloom_bytes: 0,
        };
        let whole = match kind {
            KIND_BLINDED_SET => BlindedSet::decode(bytes, &limits).map(|m| m.encode()),
            KIND_MUTUAL_REPLY => MutualReply::decode(bytes, &limits).map(|m| m.encode()),
            _ => ReblindedSet::decode(bytes, &limits).map(|m| m.encode()),
        };
        let shown = |r: &Result<Vec<u8>, PsiError>| match r {
            Ok(encoded) => format!("ok {}", encoded.len()),
            Err(e) => e.to_string(),
        };
        assert_eq!(shown(&whole), expected, "whole message");
        for cut in [1, 2, 3, 5, 31, 32, 33, 64, 1000] {
            let mut decoder = match kind {
                KIND_BLINDED_SET => PointsDecoder::blinded_set(limits),
                KIND_MUTUAL_REPLY => PointsDecoder::mutual_reply(limits),
                _ => PointsDecoder::reblinded_set(limits),
            };
            let pushed = bytes.chunks(cut).try_for_each(|piece| decoder.push(piece));
            let streamed = pushed.and_then(|()| match kind {
                KIND_BLINDED_SET => decoder.finish_blinded_set().map(|m| m.encode()),
                KIND_MUTUAL_REPLY => decoder.finish_mutual_reply().map(|m| m.encode()),
                _ => decoder.finish_reblinded_set().map(|m| m.encode()),
            });
            assert_eq!(shown(&streamed), expected, "pieces of {cut} bytes");
            if let (Ok(a), Ok(b)) = (&whole, &streamed) {
                assert_eq!(a, b);
                assert_eq!(a.as_slice(), bytes);
            }
        }
    }

    fn message(head: &[u8], points: &[u8]) -> Vec<u8> {
        let mut out = head.to_vec();
        for &p in points {
            out.extend_from_slice(&[p; 32]);
        }
        out
    }

    #[test]
    fn streamed_decoding_matches_whole_decoding() {
        let (b, m, r) = (KIND_BLINDED_SET, KIND_MUTUAL_REPLY, KIND_REBLINDED_SET);
        check(b, &message(&[1, 1, 2, 0, 0, 0], &[7, 8]), "ok 70");
        check(b, &message(&[1, 1, 0, 0, 0, 0], &[]), "ok 6");
        check(r, &message(&[1, 3, 1, 0, 0, 0], &[9]), "ok 38");
        check(
            m,
            &message(&[1, 2, 1, 0, 0, 0, 2, 0, 0, 0], &[1, 2, 3]),
            "ok 106",
        );
        check(b, &[], "blinded set is truncated: expected 1 bytes, got 0");
        check(b, &[1], "blinded set is truncated: expected 2 bytes, got 1");
        check(
            b,
            &[1, 1, 2],
            "blinded set is truncated: expected 6 bytes, got 3",
        );
        check(
            m,
            &[1, 2, 1, 0, 0, 0, 2],
            "mutual reply is truncated: expected 10 bytes, got 7",
        );
        check(b, &[2, 1], "blinded set has wire version 2, expected 1");
        check(
            b,
            &[1, 2, 0, 0, 0, 0],
            "expected blinded set (kind 1), got message kind 2",
        );
        check(
            b,
            &[1, 1, 5, 0, 0, 0],
            "blinded set announces 5 elements, more than the limit of 4",
        );
        check(
            m,
            &[1, 2, 0, 0, 0, 0, 9, 0, 0, 0],
            "mutual reply announces 9 elements, more than the limit of 4",
        );
        check(
            b,
            &message(&[1, 1, 2, 0, 0, 0], &[7]),
            "blinded set is truncated: expected 70 bytes, got 38",
        );
        check(
            b,
            &message(&[1, 1, 2, 0, 0, 0], &[7, 0]),
            "blinded set has the identity point at index 1",
        );
        // A truncated list is reported before an identity point in it.
        check(
            b,
            &message(&[1, 1, 3, 0, 0, 0], &[0, 7]),
            "blinded set is truncated: expected 102 bytes, got 70",
        );
        // The second list's identity is numbered within the message.
        check(
            m,
            &message(&[1, 2, 1, 0, 0, 0, 2, 0, 0, 0], &[1, 2, 0]),
            "mutual reply has the identity point at index 2",
        );
        // The first list's identity comes before the second list's truncation.
        check(
            m,
            &message(&[1, 2, 1, 0, 0, 0, 2, 0, 0, 0], &[0, 2]),
            "mutual reply has the identity point at index 0",
        );
        check(
            m,
            &message(&[1, 2, 1, 0, 0, 0, 2, 0, 0, 0], &[1, 2]),
            "mutual reply is truncated: expected 106 bytes, got 74",
        );
        let mut trailing = message(&[1, 3, 1, 0, 0, 0], &[9]);
        trailing.extend_from_slice(&[0; 40]);
        check(r, &trailing, "reblinded set has 40 trailing bytes");
    }

    #[test]
    fn encoded_ranges_join_to_the_whole_message() {
        let points = |n: u8| (1..=n).map(|i| CompressedRistretto([i; 32])).collect();
        let reply = MutualReply {
            initiator_doubled: points(3),
            responder_blinded: points(4),
        };
        let whole = reply.encode();
        assert_eq!(reply.encoded_len(), whole.len());
        for step in [1, 7, 32, 33, 100, 1000] {
            let mut joined = Vec::new();
            let mut start = 0;
            while start < whole.len() {
                let end = (start + step).min(whole.len());
                reply.encode_range(start, end, &mut joined);
                start = end;
            }
            assert_eq!(joined, whole, "ranges of {step} bytes");
        }
        let set = BlindedSet { points: points(2) };
        let mut out = Vec::new();
        set.encode_range(0, set.encoded_len(), &mut out);
        assert_eq!(out, set.encode());
        let reblinded = ReblindedSet { points: points(0) };
        out.clear();
        reblinded.encode_range(0, reblinded.encoded_len(), &mut out);
        assert_eq!(out, reblinded.encode());
    }
}
