//! Protocol frames over a stream of byte-bounded chunks: splitting on the way out, and on the
//! way in reassembly that checks each message kind's size bound as bytes arrive, so an
//! oversize message is refused before it is buffered whole.

use blindlink_protocol::{Message, MessageKind, ProtocolError};

use crate::ServiceError;
use crate::pb::Chunk;

/// Splits a frame into chunks of at most `max_chunk` bytes, the last marked `last`. The
/// chunks are cut from the end of the frame, which shrinks as they are, so the frame is not
/// held twice.
pub(crate) fn split(mut frame: Vec<u8>, max_chunk: usize) -> Vec<Chunk> {
    let max_chunk = max_chunk.max(1);
    let mut pieces = Vec::with_capacity(frame.len().div_ceil(max_chunk).max(1));
    while frame.len() > max_chunk {
        let last_start = (frame.len() - 1) / max_chunk * max_chunk;
        pieces.push(frame.split_off(last_start));
        frame.shrink_to_fit();
    }
    pieces.push(frame);
    pieces.reverse();
    let count = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, data)| Chunk {
            data,
            last: i + 1 == count,
        })
        .collect()
}

/// Reassembles frames from chunks.
#[derive(Debug, Default)]
pub(crate) struct FrameAssembler {
    buffer: Vec<u8>,
    kind: Option<MessageKind>,
}

impl FrameAssembler {
    /// Takes one chunk; returns a decoded message and its frame length when the chunk was the
    /// last of a frame.
    pub(crate) fn push(
        &mut self,
        chunk: Chunk,
        max_chunk: usize,
    ) -> Result<Option<(Message, usize)>, ServiceError> {
        if chunk.data.len() > max_chunk {
            return Err(ServiceError::ChunkTooLarge {
                len: chunk.data.len(),
                limit: max_chunk,
            });
        }
        if chunk.data.is_empty() && !chunk.last {
            return Err(ProtocolError::Invalid {
                what: "chunk",
                reason: "empty chunk that is not the last of its message".to_owned(),
            }
            .into());
        }
        if self.kind.is_none()
            && let Some(&first) = chunk.data.first()
        {
            self.kind = Some(MessageKind::from_byte(first)?);
        }
        if let Some(kind) = self.kind {
            kind.check_len(self.buffer.len() + chunk.data.len())?;
        }
        if self.buffer.is_empty() && chunk.last {
            let len = chunk.data.len();
            self.kind = None;
            return Ok(Some((Message::decode_owned(chunk.data)?, len)));
        }
        if self.buffer.is_empty() {
            self.reserve_frame(&chunk.data);
        }
        self.buffer.extend_from_slice(&chunk.data);
        if !chunk.last {
            return Ok(None);
        }
        let frame = std::mem::take(&mut self.buffer);
        self.kind = None;
        let len = frame.len();
        let message = Message::decode_owned(frame)?;
        Ok(Some((message, len)))
    }

    /// Room for the whole frame at once when its first chunk names its length (a mode
    /// chunk's header: kind, round, flag, payload length), within its kind's bound: the
    /// buffer is then the frame's size, not the next power of two.
    fn reserve_frame(&mut self, first: &[u8]) {
        let Some(kind) = self.kind.filter(|k| k.is_mode()) else {
            return;
        };
        if let Some(len) = first.get(4..8) {
            let payload = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let frame = payload.saturating_add(8);
            if frame <= kind.max_frame_len() {
                self.buffer.reserve_exact(frame);
            }
        }
    }

    /// True while part of a frame is buffered.
    pub(crate) fn in_progress(&self) -> Option<MessageKind> {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindlink_protocol::Ping;

    fn check(chunks: &[(&[u8], bool)], expected: &str) {
        let mut assembler = FrameAssembler::default();
        let mut got = String::new();
        for (data, last) in chunks {
            match assembler.push(
                Chunk {
                    data: data.to_vec(),
                    last: *last,
                },
                8,
            ) {
                Ok(Some((message, len))) => {
                    got.push_str(&format!("{}:{len} ", message.kind().name()))
                }
                Ok(None) => {}
                Err(e) => {
                    got.push_str(&e.to_string());
                    break;
                }
            }
        }
        assert_eq!(got.trim_end(), expected);
    }

    #[test]
    fn reassembly() {
        check(&[(&[0x03], true)], "done:1");
        check(&[(&[0x03], true), (&[0x03], true)], "done:1 done:1");
        check(
            &[(&[0x10, 0, 0, 0, 1], false), (&[0, 0, 0, 1, 7], true)],
            "ping:10",
        );
        check(&[(&[], true)], "empty message (no kind byte)");
        check(
            &[(&[], false)],
            "invalid chunk: empty chunk that is not the last of its message",
        );
        check(&[(&[0x7e], false)], "unknown message kind 0x7e");
        check(
            &[(&[0; 9], true)],
            "chunk of 9 bytes is over the limit of 8 bytes",
        );
        check(
            &[(&[0x03], false), (&[0], true)],
            "message of kind 'done' is 2 bytes, over its limit of 1 bytes",
        );
    }

    #[test]
    fn split_then_reassemble() {
        let ping = Message::Ping(Ping {
            sequence: 3,
            payload: (0..=255).collect(),
        });
        let frame = ping.encode().unwrap();
        let chunks = split(frame.clone(), 100);
        assert_eq!(chunks.len(), frame.len().div_ceil(100));
        let mut assembler = FrameAssembler::default();
        let mut out = None;
        for chunk in chunks {
            out = assembler.push(chunk, 100).unwrap();
        }
        assert_eq!(out, Some((ping, frame.len())));
        assert!(assembler.in_progress().is_none());
    }
}
