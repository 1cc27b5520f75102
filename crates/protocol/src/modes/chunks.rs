//! A logical mode message (a PSI message, a batch of CLKs, scores or link ids) travels as
//! [`ModeChunk`]s of at most [`MAX_MODE_CHUNK_BYTES`]; the receiver reassembles it under a bound
//! chosen by the state that expects it, before anything is decoded.

use crate::{MAX_MODE_CHUNK_BYTES, Message, MessageKind, ModeChunk, ProtocolError};

/// Splits `bytes` into chunks of `kind` for `round`; an empty message is one empty last chunk.
/// The chunks are cut from the end of `bytes`, which shrinks as they are, so a large message
/// is not held twice (as one buffer and as its chunks).
pub(crate) fn split(kind: MessageKind, round: u16, mut bytes: Vec<u8>) -> Vec<Message> {
    let mut pieces: Vec<Vec<u8>> = Vec::with_capacity(bytes.len() / MAX_MODE_CHUNK_BYTES + 1);
    while bytes.len() > MAX_MODE_CHUNK_BYTES {
        let last_start = (bytes.len() - 1) / MAX_MODE_CHUNK_BYTES * MAX_MODE_CHUNK_BYTES;
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
}

impl Reassembly {
    pub(crate) fn new(kind: MessageKind, round: u16, limit: usize) -> Self {
        Self {
            kind,
            round,
            limit,
            bytes: Vec::new(),
        }
    }

    /// Adds a chunk; returns the whole message with its last chunk.
    pub(crate) fn push(
        &mut self,
        chunk: ModeChunk,
        state: &'static str,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
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
        let len = self.bytes.len().saturating_add(chunk.payload.len());
        if len > self.limit {
            return Err(ProtocolError::Oversize {
                kind: self.kind.name(),
                len,
                limit: self.limit,
            });
        }
        if self.bytes.is_empty() && chunk.last {
            return Ok(Some(chunk.payload));
        }
        self.bytes.extend_from_slice(&chunk.payload);
        Ok(chunk.last.then(|| std::mem::take(&mut self.bytes)))
    }
}
