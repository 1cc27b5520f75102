//! The seam between a transport and a protocol mode: after the handshake, the transport feeds
//! each decoded peer message to a [`SessionDriver`] and sends what it returns. A mode is a
//! driver per role; the transport knows nothing about modes.
//!
//! [`PingInitiator`] and [`PingResponder`] are the connectivity test vehicle: they echo
//! payloads and learn nothing about anyone's data. They are not a linkage mode.

use crate::ProtocolError;
use crate::handshake::EstablishedSession;
use crate::ledger::DisclosureLedger;
use crate::message::{Message, Ping};

/// What a driver wants done after a step.
///
/// A step's messages are `send`, then whatever [`SessionDriver::next_message`] gives until
/// it gives `None`: a large message (a PSI set) is produced a chunk at a time, as the
/// transport has room for it, so it is never held encoded in full.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverStep {
    /// Messages to send, in order, before those the driver produces on demand.
    pub send: Vec<Message>,
    /// The driver has finished: after sending `send` and every message
    /// [`SessionDriver::next_message`] still gives, the transport ends this side of the
    /// session normally.
    pub finished: bool,
}

/// One role of one protocol mode, driven by a transport.
///
/// The transport handles `Abort` messages and the end of the peer's stream itself; a driver
/// sees every other message and may return an error for one it does not expect, which the
/// transport reports to the peer and to its caller.
pub trait SessionDriver: Send {
    /// Called once when the handshake has established the session, before [`Self::start`]:
    /// a driver that keeps a transcript records both hellos from it. The default does nothing.
    fn established(&mut self, session: &EstablishedSession) {
        let _ = session;
    }

    /// Called once right after the handshake.
    ///
    /// # Errors
    /// The driver cannot start (e.g. its input is invalid).
    fn start(&mut self, ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError>;

    /// Called for each message from the peer.
    ///
    /// # Errors
    /// The message is out of order or invalid for this mode.
    fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError>;

    /// The next message of the steps so far, after their `send`: the transport calls it
    /// whenever it has room for another message (after [`Self::start`] and each
    /// [`Self::handle`], until it returns `None`), so a driver can hand over a large
    /// message chunk by chunk instead of all at once. Cheap: the chunk's work was done in the
    /// step. The default has nothing more to send.
    ///
    /// A driver that wraps another must forward this call (or drain it into its own steps'
    /// `send`), or the inner driver's messages are never sent.
    fn next_message(&mut self) -> Option<Message> {
        None
    }
}

/// Sends `count` pings of `payload_len` bytes, checks each pong, then sends `done`.
#[derive(Debug, Clone)]
pub struct PingInitiator {
    count: u32,
    payload_len: usize,
    next: u32,
    seed: u8,
}

impl PingInitiator {
    /// Pings `count` times; the payload bytes are derived from `seed` so concurrent sessions
    /// carry different bytes and a crossed wire is noticed.
    #[must_use]
    pub fn new(count: u32, payload_len: usize, seed: u8) -> Self {
        Self {
            count,
            payload_len,
            next: 0,
            seed,
        }
    }

    fn ping(&self, sequence: u32) -> Message {
        let payload = (0..self.payload_len)
            .map(|i| self.seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (sequence as u8))
            .collect();
        Message::Ping(Ping { sequence, payload })
    }

    fn next_step(&mut self) -> DriverStep {
        if self.next < self.count {
            let msg = self.ping(self.next);
            DriverStep {
                send: vec![msg],
                finished: false,
            }
        } else {
            DriverStep {
                send: vec![Message::Done],
                finished: true,
            }
        }
    }
}

impl SessionDriver for PingInitiator {
    fn start(&mut self, _ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        Ok(self.next_step())
    }

    fn handle(
        &mut self,
        message: Message,
        _ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        match message {
            Message::Pong(pong) => {
                let Message::Ping(expected) = self.ping(self.next) else {
                    unreachable!("ping() builds a ping");
                };
                if self.next >= self.count || pong != expected {
                    return Err(ProtocolError::Invalid {
                        what: "pong",
                        reason: format!(
                            "sequence {} does not echo ping {} of this session",
                            pong.sequence, self.next
                        ),
                    });
                }
                self.next += 1;
                Ok(self.next_step())
            }
            other => Err(ProtocolError::UnexpectedMessage {
                got: other.kind().name(),
                state: "while pinging",
                expected: "pong",
            }),
        }
    }
}

/// Answers each ping with a pong and finishes on `done`.
#[derive(Debug, Clone, Default)]
pub struct PingResponder {
    pings: u64,
}

impl PingResponder {
    /// Pings answered so far.
    #[must_use]
    pub fn pings(&self) -> u64 {
        self.pings
    }
}

impl SessionDriver for PingResponder {
    fn start(&mut self, _ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        Ok(DriverStep::default())
    }

    fn handle(
        &mut self,
        message: Message,
        _ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        match message {
            Message::Ping(ping) => {
                self.pings += 1;
                Ok(DriverStep {
                    send: vec![Message::Pong(ping)],
                    finished: false,
                })
            }
            Message::Done => Ok(DriverStep {
                send: Vec::new(),
                finished: true,
            }),
            other => Err(ProtocolError::UnexpectedMessage {
                got: other.kind().name(),
                state: "while answering pings",
                expected: "ping or done",
            }),
        }
    }
}
