//! Message framing: every protocol message is one frame, a kind byte followed by the kind's
//! body. Each kind has a size bound that is checked before a body is decoded (a transport can
//! check it while the frame is still arriving, see [`MessageKind::max_frame_len`]), and decoding
//! consumes the body to its last byte.
//!
//! Kinds `0x01`–`0x0f` are the session's control messages, `0x10`–`0x1f` the connectivity test
//! vehicle (ping), and `0x20`–`0x7f` belong to the linkage modes. Every mode message is a
//! [`ModeChunk`]: a round number, a last-chunk flag and at most [`MAX_MODE_CHUNK_BYTES`] of a
//! larger logical message, which the mode reassembles (with its own bound) and decodes. Each
//! kind names what it carries, so a ledger's per-kind counts say exactly what crossed the wire
//! (e.g. no CLK-bearing kind ever appears in `exact` mode).

use crate::hello::Hello;
use crate::wire::{WireReader, WireWriter};
use crate::{ProtocolError, sanitise_peer_text};

/// Longest abort reason, in bytes.
pub const MAX_ABORT_REASON_BYTES: usize = 1024;
/// Largest ping payload, in bytes.
pub const MAX_PING_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest payload of one mode chunk, in bytes (a logical mode message is split into chunks).
pub const MAX_MODE_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// The kind of a frame: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// The handshake's hello (both directions).
    Hello,
    /// One side gives up, with a reason.
    Abort,
    /// The sender has finished the session normally.
    Done,
    /// A connectivity probe carrying a payload to echo.
    Ping,
    /// The echo of a ping.
    Pong,
    /// PSI: the initiator's blinded set (a fragment of a `blindlink-psi` message).
    PsiBlindedSet,
    /// PSI: the responder's mutual reply (both point lists).
    PsiMutualReply,
    /// PSI: the initiator's reblinded copy of the responder's points.
    PsiReblindedSet,
    /// PSI: the responder's cardinality reply (sorted points or a Bloom filter).
    PsiCardinalityReply,
    /// The intersection size the cardinality initiator found, sent back to the responder.
    IntersectionSize,
    /// Grouped PSI: the comparing side's blinded tokens of every compared pair and field.
    PsiGroupedQuery,
    /// Grouped PSI: the other side's doubly blinded and own blinded points of every group.
    PsiGroupedReply,
    /// Fuzzy: the matched band-token numbers of each candidate record (no CLK).
    CandidateTokens,
    /// Validate and fuzzy: the compared pairs, named (holders per linked ID, or the candidate
    /// of every pair).
    PairPlan,
    /// Clk-exchange: every record's CLK (decodable by the receiver, who holds the key).
    AllClks,
    /// Validate: the agreement score and flag of every linked pair, in link-id order.
    PairScores,
    /// Fuzzy and clk-exchange: the accepted pairs with their link ids and scores.
    LinkIds,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 17] = [
        MessageKind::Hello,
        MessageKind::Abort,
        MessageKind::Done,
        MessageKind::Ping,
        MessageKind::Pong,
        MessageKind::PsiBlindedSet,
        MessageKind::PsiMutualReply,
        MessageKind::PsiReblindedSet,
        MessageKind::PsiCardinalityReply,
        MessageKind::IntersectionSize,
        MessageKind::PsiGroupedQuery,
        MessageKind::PsiGroupedReply,
        MessageKind::CandidateTokens,
        MessageKind::PairPlan,
        MessageKind::AllClks,
        MessageKind::PairScores,
        MessageKind::LinkIds,
    ];

    /// Whether this kind belongs to a linkage mode (its frames carry a [`ModeChunk`]).
    #[must_use]
    pub const fn is_mode(self) -> bool {
        self.byte() >= 0x20
    }

    /// Whether frames of this kind carry CLKs (Bloom-filter encodings of personal data, which
    /// the receiver can decode with the linkage key), as opposed to blinded points, counts,
    /// token numbers, scores or link ids: only `all_clks`, of `clk-exchange`.
    #[must_use]
    pub const fn carries_clks(self) -> bool {
        matches!(self, Self::AllClks)
    }

    /// The first byte of a frame of this kind.
    #[must_use]
    pub const fn byte(self) -> u8 {
        match self {
            Self::Hello => 0x01,
            Self::Abort => 0x02,
            Self::Done => 0x03,
            Self::Ping => 0x10,
            Self::Pong => 0x11,
            Self::PsiBlindedSet => 0x20,
            Self::PsiMutualReply => 0x21,
            Self::PsiReblindedSet => 0x22,
            Self::PsiCardinalityReply => 0x23,
            Self::IntersectionSize => 0x24,
            Self::PsiGroupedQuery => 0x25,
            Self::PsiGroupedReply => 0x26,
            Self::CandidateTokens => 0x33,
            Self::PairPlan => 0x34,
            Self::AllClks => 0x32,
            Self::PairScores => 0x40,
            Self::LinkIds => 0x41,
        }
    }

    /// The kind named by a frame's first byte.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownKind`] for a byte that names no kind.
    pub fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        Self::ALL
            .into_iter()
            .find(|k| k.byte() == byte)
            .ok_or(ProtocolError::UnknownKind(byte))
    }

    /// The name used in errors and ledgers.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Abort => "abort",
            Self::Done => "done",
            Self::Ping => "ping",
            Self::Pong => "pong",
            Self::PsiBlindedSet => "psi_blinded_set",
            Self::PsiMutualReply => "psi_mutual_reply",
            Self::PsiReblindedSet => "psi_reblinded_set",
            Self::PsiCardinalityReply => "psi_cardinality_reply",
            Self::IntersectionSize => "intersection_size",
            Self::PsiGroupedQuery => "psi_grouped_query",
            Self::PsiGroupedReply => "psi_grouped_reply",
            Self::CandidateTokens => "candidate_tokens",
            Self::PairPlan => "pair_plan",
            Self::AllClks => "all_clks",
            Self::PairScores => "pair_scores",
            Self::LinkIds => "link_ids",
        }
    }

    /// The longest frame (kind byte included) of this kind.
    #[must_use]
    pub const fn max_frame_len(self) -> usize {
        1 + match self {
            // A full hello: version, session, mode, 64 fields, 64 parameters, three hashes.
            Self::Hello => {
                2 + 16 + 1 + (1 + 64 * 2 * (2 + 64)) + 32 + (1 + 64 * (4 + 64 + 256)) + 64
            }
            Self::Abort => 2 + MAX_ABORT_REASON_BYTES,
            Self::Done => 0,
            Self::Ping | Self::Pong => 4 + 4 + MAX_PING_PAYLOAD_BYTES,
            // round, last flag, length-prefixed payload.
            _ => 2 + 1 + 4 + self.max_chunk_payload(),
        }
    }

    /// The largest payload of one chunk of this mode kind: 8 bytes for `intersection_size`
    /// (a `u64`), [`MAX_MODE_CHUNK_BYTES`] for the bulk kinds, 0 for non-mode kinds.
    #[must_use]
    pub const fn max_chunk_payload(self) -> usize {
        match self {
            Self::Hello | Self::Abort | Self::Done | Self::Ping | Self::Pong => 0,
            Self::IntersectionSize => 8,
            _ => MAX_MODE_CHUNK_BYTES,
        }
    }

    /// Checks a frame (or the first `len` bytes of one still arriving) against the bound of
    /// its kind.
    ///
    /// # Errors
    /// [`ProtocolError::Oversize`].
    pub fn check_len(self, len: usize) -> Result<(), ProtocolError> {
        let limit = self.max_frame_len();
        if len > limit {
            Err(ProtocolError::Oversize {
                kind: self.name(),
                len,
                limit,
            })
        } else {
            Ok(())
        }
    }
}

/// The largest frame of any kind; a transport may reject anything longer outright.
#[must_use]
pub fn max_frame_len() -> usize {
    MessageKind::ALL
        .into_iter()
        .map(MessageKind::max_frame_len)
        .max()
        .unwrap_or(0)
}

/// A ping or pong: a sequence number and a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Sequence number, echoed back.
    pub sequence: u32,
    /// Payload, echoed back.
    pub payload: Vec<u8>,
}

/// A piece of a linkage mode's logical message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChunk {
    /// What the logical message is (a mode kind, see [`MessageKind::is_mode`]).
    pub kind: MessageKind,
    /// The round the message belongs to (the cascade key index; 0 in single-round steps).
    pub round: u16,
    /// This chunk ends the logical message.
    pub last: bool,
    /// At most [`MAX_MODE_CHUNK_BYTES`] bytes of the logical message.
    pub payload: Vec<u8>,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// See [`MessageKind::Hello`].
    Hello(Box<Hello>),
    /// See [`MessageKind::Abort`]; the reason is sanitised text.
    Abort(String),
    /// See [`MessageKind::Done`].
    Done,
    /// See [`MessageKind::Ping`].
    Ping(Ping),
    /// See [`MessageKind::Pong`].
    Pong(Ping),
    /// A chunk of a linkage mode's message; its kind is one of the mode kinds.
    Mode(ModeChunk),
}

impl Message {
    /// The kind of this message.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Hello(_) => MessageKind::Hello,
            Self::Abort(_) => MessageKind::Abort,
            Self::Done => MessageKind::Done,
            Self::Ping(_) => MessageKind::Ping,
            Self::Pong(_) => MessageKind::Pong,
            Self::Mode(chunk) => chunk.kind,
        }
    }

    /// An abort message; the reason is sanitised and cut to fit its bound.
    #[must_use]
    pub fn abort(reason: &str) -> Self {
        let mut text = sanitise_peer_text(reason, MAX_ABORT_REASON_BYTES / 4);
        while text.len() > MAX_ABORT_REASON_BYTES {
            text.pop();
        }
        Self::Abort(text)
    }

    /// Encodes this message as one frame.
    ///
    /// # Errors
    /// A ping payload over [`MAX_PING_PAYLOAD_BYTES`] or an abort reason over
    /// [`MAX_ABORT_REASON_BYTES`] (the other kinds are bounded by construction).
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{Message, Ping};
    /// let ping = Message::Ping(Ping { sequence: 7, payload: b"hi".to_vec() });
    /// let frame = ping.encode().unwrap();
    /// assert_eq!(frame, [0x10, 0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i']);
    /// assert_eq!(Message::decode(&frame).unwrap(), ping);
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut w = WireWriter::default();
        w.u8(self.kind().byte());
        match self {
            Self::Hello(hello) => hello.write(&mut w),
            Self::Abort(reason) => {
                crate::wire::check_text(reason, MAX_ABORT_REASON_BYTES, "abort reason")?;
                w.text(reason);
            }
            Self::Done => {}
            Self::Ping(ping) | Self::Pong(ping) => {
                if ping.payload.len() > MAX_PING_PAYLOAD_BYTES {
                    return Err(ProtocolError::Oversize {
                        kind: self.kind().name(),
                        len: ping.payload.len(),
                        limit: MAX_PING_PAYLOAD_BYTES,
                    });
                }
                w.u32(ping.sequence);
                w.bytes(&ping.payload);
            }
            Self::Mode(chunk) => {
                if !chunk.kind.is_mode() {
                    return Err(ProtocolError::Invalid {
                        what: "mode chunk",
                        reason: format!("kind '{}' is not a mode kind", chunk.kind.name()),
                    });
                }
                if chunk.payload.len() > chunk.kind.max_chunk_payload() {
                    return Err(ProtocolError::Oversize {
                        kind: chunk.kind.name(),
                        len: chunk.payload.len(),
                        limit: chunk.kind.max_chunk_payload(),
                    });
                }
                w.u16(chunk.round);
                w.u8(u8::from(chunk.last));
                w.bytes(&chunk.payload);
            }
        }
        self.kind().check_len(w.bytes.len())?;
        Ok(w.bytes)
    }

    /// Decodes one frame.
    ///
    /// # Errors
    /// An empty frame, an unknown kind, a frame over its kind's bound, a malformed body, or
    /// bytes left after the body.
    pub fn decode(frame: &[u8]) -> Result<Self, ProtocolError> {
        let (&first, body) = frame.split_first().ok_or(ProtocolError::EmptyMessage)?;
        let kind = MessageKind::from_byte(first)?;
        kind.check_len(frame.len())?;
        let mut r = WireReader::new(body);
        let message = match kind {
            MessageKind::Hello => Self::Hello(Box::new(Hello::read(&mut r)?)),
            MessageKind::Abort => Self::Abort(r.text(MAX_ABORT_REASON_BYTES, "abort reason")?),
            MessageKind::Done => Self::Done,
            MessageKind::Ping | MessageKind::Pong => {
                let ping = Ping {
                    sequence: r.u32("ping sequence")?,
                    payload: r.bytes(MAX_PING_PAYLOAD_BYTES, "ping payload")?.to_vec(),
                };
                if kind == MessageKind::Ping {
                    Self::Ping(ping)
                } else {
                    Self::Pong(ping)
                }
            }
            _ => {
                let (round, last) = read_chunk_header(&mut r)?;
                let payload = r.bytes(kind.max_chunk_payload(), "chunk payload")?.to_vec();
                Self::Mode(ModeChunk {
                    kind,
                    round,
                    last,
                    payload,
                })
            }
        };
        r.finish(kind.name())?;
        Ok(message)
    }

    /// [`Message::decode`] taking the frame by value: a mode chunk's payload is then the
    /// frame's own buffer less its header, not a copy (a transport that reassembles frames
    /// holds each chunk once). Same checks, same errors.
    ///
    /// # Errors
    /// As [`Message::decode`].
    pub fn decode_owned(mut frame: Vec<u8>) -> Result<Self, ProtocolError> {
        let kind = match frame.first() {
            Some(&first) => MessageKind::from_byte(first)?,
            None => return Err(ProtocolError::EmptyMessage),
        };
        if !kind.is_mode() {
            return Self::decode(&frame);
        }
        kind.check_len(frame.len())?;
        let mut r = WireReader::new(&frame[1..]);
        let (round, last) = read_chunk_header(&mut r)?;
        let len = r.bytes(kind.max_chunk_payload(), "chunk payload")?.len();
        r.finish(kind.name())?;
        frame.drain(..frame.len() - len);
        Ok(Self::Mode(ModeChunk {
            kind,
            round,
            last,
            payload: frame,
        }))
    }
}

/// A mode chunk's round and last-chunk flag.
fn read_chunk_header(r: &mut WireReader<'_>) -> Result<(u16, bool), ProtocolError> {
    let round = r.u16("chunk round")?;
    let last = match r.u8("chunk flag")? {
        0 => false,
        1 => true,
        other => {
            return Err(ProtocolError::Invalid {
                what: "chunk flag",
                reason: format!("expected 0 or 1, got {other}"),
            });
        }
    };
    Ok((round, last))
}
