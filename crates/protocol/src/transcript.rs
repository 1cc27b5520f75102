//! The audit transcript of one side of one session: every logical message this side sent and
//! received, after reassembly of its chunks, plus both handshake hellos, with the bytes that
//! crossed the wire.
//!
//! # Format (`transcript.bin`)
//!
//! All integers big-endian.
//!
//! | field | bytes |
//! |---|---|
//! | magic `BLTRANS1` | 8 |
//! | session id | 16 |
//! | recording side's role: 1 initiator, 2 responder | 1 |
//! | then, until the end of the file, entries: | |
//! | direction: `S` (0x53) sent, `R` (0x52) received | 1 |
//! | message kind byte (as in frames: 0x01 hello, 0x03 done, 0x20.. mode kinds) | 1 |
//! | round (the chunk round of a mode message; 0 otherwise) | 2 |
//! | length `n` | 4 |
//! | the message bytes: a hello's body (the frame without its kind byte), a mode message's reassembled payload, nothing for `done` | `n` |
//!
//! Entries are in the order this side sent or finished receiving them.

use crate::ProtocolError;
use crate::hello::Hello;
use crate::message::{Message, MessageKind};
use crate::session::{Role, SessionId};
use crate::wire::{WireReader, WireWriter};

/// The first bytes of a transcript.
pub const TRANSCRIPT_MAGIC: &[u8; 8] = b"BLTRANS1";

/// Which way a message went, seen from the recording side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This side sent it.
    Sent,
    /// This side received it.
    Received,
}

impl Direction {
    const fn byte(self) -> u8 {
        match self {
            Self::Sent => b'S',
            Self::Received => b'R',
        }
    }
}

/// One logical message.
#[derive(Clone, PartialEq, Eq)]
pub struct TranscriptEntry {
    /// Sent or received.
    pub direction: Direction,
    /// Its kind.
    pub kind: MessageKind,
    /// Its round (mode messages; 0 otherwise).
    pub round: u16,
    /// Its bytes (see the module documentation).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for TranscriptEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptEntry")
            .field("direction", &self.direction)
            .field("kind", &self.kind)
            .field("round", &self.round)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The transcript of one side of one session.
///
/// # Example
/// ```
/// use blindlink_protocol::*;
/// let mut t = Transcript::new(SessionId::from_bytes([3; 16]), Role::Initiator);
/// t.push(Direction::Sent, MessageKind::Done, 0, Vec::new());
/// let bytes = t.to_bytes();
/// assert_eq!(&bytes[..8], b"BLTRANS1");
/// assert_eq!(Transcript::from_bytes(&bytes).unwrap(), t);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    session_id: SessionId,
    role: Role,
    entries: Vec<TranscriptEntry>,
}

impl Transcript {
    /// An empty transcript.
    #[must_use]
    pub fn new(session_id: SessionId, role: Role) -> Self {
        Self {
            session_id,
            role,
            entries: Vec::new(),
        }
    }

    /// The session.
    #[must_use]
    pub const fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The recording side's role.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The entries in order.
    #[must_use]
    pub fn entries(&self) -> &[TranscriptEntry] {
        &self.entries
    }

    /// Appends an entry.
    pub fn push(&mut self, direction: Direction, kind: MessageKind, round: u16, bytes: Vec<u8>) {
        self.entries.push(TranscriptEntry {
            direction,
            kind,
            round,
            bytes,
        });
    }

    pub(crate) fn push_hello(&mut self, direction: Direction, hello: &Hello) {
        let mut w = WireWriter::default();
        hello.write(&mut w);
        self.push(direction, MessageKind::Hello, 0, w.bytes);
    }

    /// The encoded transcript (see the module documentation).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = WireWriter::default();
        w.raw(TRANSCRIPT_MAGIC);
        w.raw(self.session_id.as_bytes());
        w.u8(self.role.wire_byte());
        for e in &self.entries {
            w.u8(e.direction.byte());
            w.u8(e.kind.byte());
            w.u16(e.round);
            w.u32(u32::try_from(e.bytes.len()).unwrap_or(u32::MAX));
            w.raw(&e.bytes);
        }
        w.bytes
    }

    /// Reads a transcript back.
    ///
    /// # Errors
    /// [`ProtocolError::Invalid`] or [`ProtocolError::Truncated`] naming the entry: a wrong
    /// magic, an unknown role, direction or kind, an entry longer than the bytes left.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let invalid = |reason: String| ProtocolError::Invalid {
            what: "transcript",
            reason,
        };
        let mut r = WireReader::new(bytes);
        if &r.array::<8>("transcript magic")? != TRANSCRIPT_MAGIC {
            return Err(invalid("it does not start with BLTRANS1".into()));
        }
        let session_id = SessionId::from_bytes(r.array("transcript session id")?);
        let role = match r.u8("transcript role")? {
            1 => Role::Initiator,
            2 => Role::Responder,
            other => return Err(invalid(format!("unknown role byte {other}"))),
        };
        let mut transcript = Self::new(session_id, role);
        while !r.is_empty() {
            let n = transcript.entries.len() + 1;
            let direction = match r.u8("transcript entry direction")? {
                b'S' => Direction::Sent,
                b'R' => Direction::Received,
                other => return Err(invalid(format!("entry {n}: unknown direction {other}"))),
            };
            let kind = MessageKind::from_byte(r.u8("transcript entry kind")?)
                .map_err(|e| invalid(format!("entry {n}: {e}")))?;
            let round = r.u16("transcript entry round")?;
            let len = r.u32("transcript entry length")? as usize;
            let body = r.take(len, "transcript entry bytes")?.to_vec();
            transcript.push(direction, kind, round, body);
        }
        Ok(transcript)
    }
}

/// Gathers the chunks of logical messages in both directions into a [`Transcript`].
#[derive(Debug)]
pub(crate) struct Recorder {
    transcript: Transcript,
    /// The session id came from the handshake.
    established: bool,
    sending: Option<(MessageKind, u16, Vec<u8>)>,
    receiving: Option<(MessageKind, u16, Vec<u8>)>,
}

impl Recorder {
    pub(crate) fn new(session_id: SessionId, role: Role) -> Self {
        Self {
            transcript: Transcript::new(session_id, role),
            established: false,
            sending: None,
            receiving: None,
        }
    }

    /// The session id from the ledger, unless the handshake gave one.
    pub(crate) fn set_session(&mut self, session_id: SessionId) {
        if !self.established {
            self.transcript.session_id = session_id;
        }
    }

    pub(crate) fn hellos(&mut self, session_id: SessionId, sent: &Hello, received: &Hello) {
        self.transcript.session_id = session_id;
        self.established = true;
        // The hellos precede every mode message: the initiator's first.
        let later = std::mem::take(&mut self.transcript.entries);
        let ours = (Direction::Sent, sent);
        let theirs = (Direction::Received, received);
        let order = match self.transcript.role {
            Role::Initiator => [ours, theirs],
            Role::Responder => [theirs, ours],
        };
        for (direction, hello) in order {
            self.transcript.push_hello(direction, hello);
        }
        self.transcript.entries.extend(later);
    }

    pub(crate) fn record(&mut self, direction: Direction, message: &Message) {
        let slot = match direction {
            Direction::Sent => &mut self.sending,
            Direction::Received => &mut self.receiving,
        };
        match message {
            Message::Mode(chunk) => {
                let (_, _, bytes) =
                    slot.get_or_insert_with(|| (chunk.kind, chunk.round, Vec::new()));
                bytes.extend_from_slice(&chunk.payload);
                if chunk.last
                    && let Some((kind, round, bytes)) = slot.take()
                {
                    self.transcript.push(direction, kind, round, bytes);
                }
            }
            Message::Hello(hello) => self.transcript.push_hello(direction, hello),
            other => {
                let frame = other.encode().unwrap_or_default();
                let body = frame.get(1..).unwrap_or_default().to_vec();
                self.transcript.push(direction, other.kind(), 0, body);
            }
        }
    }

    pub(crate) fn transcript(&self) -> Transcript {
        self.transcript.clone()
    }
}
