//! A logical mode message (a PSI message, a batch of CLKs, scores or link ids) travels as
//! [`ModeChunk`]s of at most [`MAX_MODE_CHUNK_BYTES`]; the receiver reassembles it under a bound
//! chosen by the state that expects it, before anything is decoded.

use crate::{MAX_MODE_CHUNK_BYTES, Message, MessageKind, ModeChunk, ProtocolError};

/// Splits `bytes` into chunks of `kind` for `round`; an empty message is one empty last chunk.
/// The chunks are cut from the end of `bytes`, which shrinks as they are, so a large message
/// is not held twice (as one buffer and as its chunks).
pub(crate) fn split(kind: MessageKind, round: u16, bytes: Vec<u8>) -> Vec<Message> {
    split_at_most(kind, round, bytes, MAX_MODE_CHUNK_BYTES)
}

/// [`split`] into chunks of at most `max` bytes (`max` > 0).
pub(crate) fn split_at_most(
    kind: MessageKind,
    round: u16,
    mut bytes: Vec<u8>,
    max: usize,
) -> Vec<Message> {
    let mut pieces: Vec<Vec<u8>> = Vec::with_capacity(bytes.len() / max + 1);
    while bytes.len() > max {
        let last_start = (bytes.len() - 1) / max * max;
        pieces.push(bytes.split_off(last_start));
        bytes.shrink_to_fit();
    }
    pieces.push(bytes);
    pieces.reverse();
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            Message::Mode(ModeChunk {
                kind,
                round,
                last: i == last,
                payload,
            })
        })
        .collect()
}

/// The logical message a state waits for, as it arrives.
#[derive(Debug)]
pub(crate) struct Reassembly {
    kind: MessageKind,
    round: u16,
    limit: usize,
    bytes: Vec<u8>,
    /// Bytes admitted so far.
    received: usize,
}

impl Reassembly {
    pub(crate) fn new(kind: MessageKind, round: u16, limit: usize) -> Self {
        Self {
            kind,
            round,
            limit,
            bytes: Vec::new(),
            received: 0,
        }
    }

    /// Adds a chunk; returns the whole message with its last chunk.
    pub(crate) fn push(
        &mut self,
        chunk: ModeChunk,
        state: &'static str,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        self.admit(&chunk, state)?;
        if self.bytes.is_empty() && chunk.last {
            return Ok(Some(chunk.payload));
        }
        self.bytes.extend_from_slice(&chunk.payload);
        Ok(chunk.last.then(|| std::mem::take(&mut self.bytes)))
    }

    /// Checks a chunk against the message awaited (kind, round, and the bound on its length
    /// so far) and counts its bytes, without keeping them: for a state that decodes the
    /// message as it arrives.
    pub(crate) fn admit(
        &mut self,
        chunk: &ModeChunk,
        state: &'static str,
    ) -> Result<(), ProtocolError> {
        if chunk.kind != self.kind {
            return Err(ProtocolError::UnexpectedMessage {
                got: chunk.kind.name(),
                state,
                expected: self.kind.name(),
            });
        }
        if chunk.round != self.round {
            return Err(ProtocolError::Invalid {
                what: "chunk round",
                reason: format!(
                    "'{}' chunk for round {}, expected round {}",
                    self.kind.name(),
                    chunk.round,
                    self.round
                ),
            });
        }
        let len = self.received.saturating_add(chunk.payload.len());
        if len > self.limit {
            return Err(ProtocolError::Oversize {
                kind: self.kind.name(),
                len,
                limit: self.limit,
            });
        }
        self.received = len;
        Ok(())
    }
}
