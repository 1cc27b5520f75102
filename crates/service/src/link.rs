//! The message loop shared by both ends of a session: frames in from a gRPC stream of chunks,
//! frames out to a bounded channel, and the driver loop on top.
//!
//! Sending and receiving run concurrently: while outgoing chunks wait for room in the channel,
//! incoming chunks are still read. Otherwise two peers that both send a large message at once
//! could each wait, forever, for the other to read (HTTP/2 flow control bounds what is in
//! flight).

use std::collections::VecDeque;
use std::time::Duration;

use blindlink_protocol::{
    Disclosure, DisclosureLedger, EstablishedSession, Message, MessageKind, ProtocolError, Role,
    SessionDriver,
};
use tokio::sync::mpsc;

use crate::framing::{FrameAssembler, split};
use crate::pb::Chunk;
use crate::{Limits, ServiceError};

/// The ledger of an established session with `peer`, opened the same way on both ends: the
/// session, role and mode, and the schema descriptor each side disclosed to the other in its
/// hello, recorded in the order the hellos travel (the initiator's first).
pub(crate) fn open_ledger(established: &EstablishedSession, peer: &str) -> DisclosureLedger {
    let mut ledger = DisclosureLedger::new(
        established.session_id,
        established.role,
        established.mode,
        peer,
    );
    let fields = established.schema.fields().len() as u64;
    match established.role {
        Role::Initiator => {
            ledger.record_revealed(Disclosure::Schema { fields });
            ledger.record_learned(Disclosure::Schema { fields });
        }
        Role::Responder => {
            ledger.record_learned(Disclosure::Schema { fields });
            ledger.record_revealed(Disclosure::Schema { fields });
        }
    }
    ledger
}

/// Incoming side: chunks from the peer reassembled into messages.
pub(crate) struct Inbound {
    stream: tonic::Streaming<Chunk>,
    assembler: FrameAssembler,
    max_chunk: usize,
    idle_timeout: Duration,
    traffic: Vec<(MessageKind, usize)>,
}

impl Inbound {
    /// The next message, or `None` when the peer ended its stream cleanly.
    pub(crate) async fn read(&mut self) -> Result<Option<Message>, ServiceError> {
        loop {
            let next = tokio::time::timeout(self.idle_timeout, self.stream.message())
                .await
                .map_err(|_| ServiceError::Timeout {
                    what: "waiting for the peer's next message",
                    after: self.idle_timeout,
                })?;
            match next {
                Err(status) => return Err(ServiceError::from_peer_status(&status)),
                Ok(None) => {
                    return match self.assembler.in_progress() {
                        Some(_) => {
                            Err(ProtocolError::PeerClosed("in the middle of a message").into())
                        }
                        None => Ok(None),
                    };
                }
                Ok(Some(chunk)) => {
                    if let Some((message, len)) = self.assembler.push(chunk, self.max_chunk)? {
                        self.traffic.push((message.kind(), len));
                        return Ok(Some(message));
                    }
                }
            }
        }
    }
}

/// Outgoing side: messages split into chunks and queued for a bounded channel.
pub(crate) struct Outbound<T> {
    tx: Option<mpsc::Sender<T>>,
    wrap: fn(Chunk) -> T,
    queue: VecDeque<Chunk>,
    max_chunk: usize,
    traffic: Vec<(MessageKind, usize)>,
}

impl<T: Send> Outbound<T> {
    pub(crate) fn queue(&mut self, message: &Message) -> Result<(), ServiceError> {
        let frame = message.encode()?;
        self.traffic.push((message.kind(), frame.len()));
        self.queue.extend(split(frame, self.max_chunk));
        Ok(())
    }

    /// Sends everything queued. If the peer has stopped reading, the rest is dropped: the
    /// reason (its status, or its last messages) is found by reading, not by sending.
    pub(crate) async fn flush(&mut self) -> Result<(), ServiceError> {
        while let Some(chunk) = self.queue.pop_front() {
            let Some(tx) = self.tx.as_ref() else {
                break;
            };
            if tx.send((self.wrap)(chunk)).await.is_err() {
                self.peer_stopped_reading();
            }
        }
        Ok(())
    }

    fn peer_stopped_reading(&mut self) {
        self.queue.clear();
        self.tx = None;
    }

    /// Sends one item (a chunk, or on the server a final status) directly.
    pub(crate) async fn send_raw(&mut self, item: T) -> Result<(), ServiceError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or(ProtocolError::PeerClosed("after this side had finished"))?;
        tx.send(item)
            .await
            .map_err(|_| ProtocolError::PeerClosed("while this side was sending").into())
    }

    /// Ends this side's stream.
    pub(crate) fn close(&mut self) {
        self.tx = None;
    }
}

/// Both directions of one session.
pub(crate) struct Link<T> {
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound<T>,
}

impl<T: Send> Link<T> {
    pub(crate) fn new(
        stream: tonic::Streaming<Chunk>,
        tx: mpsc::Sender<T>,
        wrap: fn(Chunk) -> T,
        limits: &Limits,
    ) -> Self {
        Self {
            inbound: Inbound {
                stream,
                assembler: FrameAssembler::default(),
                max_chunk: limits.max_chunk_bytes,
                idle_timeout: limits.idle_timeout,
                traffic: Vec::new(),
            },
            outbound: Outbound {
                tx: Some(tx),
                wrap,
                queue: VecDeque::new(),
                max_chunk: limits.max_chunk_bytes,
                traffic: Vec::new(),
            },
        }
    }

    /// Receives the next message while sending whatever is queued.
    pub(crate) async fn recv(&mut self) -> Result<Option<Message>, ServiceError> {
        loop {
            if self.outbound.queue.is_empty() {
                return self.inbound.read().await;
            }
            let Some(tx) = self.outbound.tx.as_ref() else {
                return self.inbound.read().await;
            };
            let mut stopped_reading = false;
            tokio::select! {
                biased;
                permit = tx.reserve() => match permit {
                    Ok(permit) => {
                        if let Some(chunk) = self.outbound.queue.pop_front() {
                            permit.send((self.outbound.wrap)(chunk));
                        }
                    }
                    // The peer stopped reading; what it sent before says why.
                    Err(_) => stopped_reading = true,
                },
                message = self.inbound.read() => return message,
            }
            if stopped_reading {
                self.outbound.peer_stopped_reading();
            }
        }
    }

    /// Runs a mode driver until it finishes; `Abort` and the end of the peer's stream are
    /// handled here, every other message goes to the driver.
    pub(crate) async fn drive(
        &mut self,
        driver: &mut dyn SessionDriver,
        ledger: &mut DisclosureLedger,
    ) -> Result<(), ServiceError> {
        let mut step = driver.start(ledger)?;
        loop {
            for message in &step.send {
                self.outbound.queue(message)?;
            }
            if step.finished {
                return Ok(());
            }
            let message = match self.recv().await? {
                None => {
                    return Err(ProtocolError::PeerClosed("before the session was complete").into());
                }
                Some(Message::Abort(reason)) => {
                    return Err(ProtocolError::PeerAborted(reason).into());
                }
                Some(message) => message,
            };
            step = driver.handle(message, ledger)?;
        }
    }

    /// Adds the traffic seen so far to the ledger.
    pub(crate) fn record_traffic(&mut self, ledger: &mut DisclosureLedger) {
        for (kind, len) in self.outbound.traffic.drain(..) {
            ledger.record_sent(kind, len);
        }
        for (kind, len) in self.inbound.traffic.drain(..) {
            ledger.record_received(kind, len);
        }
    }
}
