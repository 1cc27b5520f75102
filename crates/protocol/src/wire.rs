//! The byte reader and writer behind every message: big-endian integers, length-prefixed
//! strings and byte strings, each with an explicit bound, and a reader that must be consumed to
//! the last byte.

use crate::ProtocolError;

/// Reads fields from one message body; [`WireReader::finish`] rejects trailing data.
#[derive(Debug)]
pub(crate) struct WireReader<'a> {
    bytes: &'a [u8],
}

impl<'a> WireReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < n {
            return Err(ProtocolError::Truncated {
                what,
                needed: n,
                available: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A byte string with a `u32` length prefix of at most `max` bytes.
    pub(crate) fn bytes(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<&'a [u8], ProtocolError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(ProtocolError::Invalid {
                what,
                reason: format!("length {len} is over the limit of {max} bytes"),
            });
        }
        self.take(len, what)
    }

    /// A UTF-8 string with a `u16` length prefix of at most `max` bytes and no control
    /// characters (so it can be shown in an error message as it is).
    pub(crate) fn text(&mut self, max: usize, what: &'static str) -> Result<String, ProtocolError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(ProtocolError::Invalid {
                what,
                reason: format!("length {len} is over the limit of {max} bytes"),
            });
        }
        let raw = self.take(len, what)?;
        let text = std::str::from_utf8(raw).map_err(|_| ProtocolError::Invalid {
            what,
            reason: "not valid utf-8".to_owned(),
        })?;
        check_text(text, max, what)?;
        Ok(text.to_owned())
    }

    pub(crate) fn finish(self, what: &'static str) -> Result<(), ProtocolError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingData {
                what,
                extra: self.bytes.len(),
            })
        }
    }
}

/// Checks a string that goes on the wire: at most `max` bytes, no control characters.
pub(crate) fn check_text(text: &str, max: usize, what: &'static str) -> Result<(), ProtocolError> {
    if text.len() > max {
        return Err(ProtocolError::Invalid {
            what,
            reason: format!("length {} is over the limit of {max} bytes", text.len()),
        });
    }
    if text.chars().any(char::is_control) {
        return Err(ProtocolError::Invalid {
            what,
            reason: "contains a control character".to_owned(),
        });
    }
    Ok(())
}

/// Appends fields to a message body. Callers check bounds before writing (the types they
/// write were validated on construction), so writing never fails.
#[derive(Debug, Default)]
pub(crate) struct WireWriter {
    pub(crate) bytes: Vec<u8>,
}

impl WireWriter {
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }
    /// Length-prefixed (u32) bytes; the caller guarantees `v.len()` fits its bound.
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.raw(v);
    }
    /// Length-prefixed (u16) text; the caller guarantees `v.len()` fits its bound.
    pub(crate) fn text(&mut self, v: &str) {
        self.u16(u16::try_from(v.len()).unwrap_or(u16::MAX));
        self.raw(v.as_bytes());
    }
}
