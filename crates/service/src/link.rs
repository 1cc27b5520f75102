//! The message loop shared by both ends of a session: frames in from a gRPC stream of chunks,
//! frames out to a bounded channel, and the driver loop on top.
//!
//! Sending and receiving run concurrently: while outgoing chunks wait for room in the channel,
//! incoming chunks are still read. A driver's large messages are taken from it one message (a
//! mode chunk of at most 4 MiB) at a time, only when everything before it has gone into the
//! channel ([`SessionDriver::next_message`]), so a step's reply is never held encoded in full. Otherwise two peers that both send a large message at once
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

/// Runs CPU-bound driver work (blinding a whole file, a grouped PSI reply) without starving the
/// runtime's other tasks.
///
/// A driver step can take minutes of CPU. Run inline on a worker thread, it keeps every task
/// queued on that worker from running, among them the HTTP/2 connection that must answer the
/// peer's keep-alive pings within [`crate::KEEPALIVE_TIMEOUT`]; on a busy host the peer then
/// drops the connection mid-session ("broken pipe" after about a minute). On a multi-threaded
/// runtime the worker hands its queued tasks to another thread for the duration
/// (`block_in_place`); on a current-thread runtime (tests) the work runs inline.
pub(crate) fn off_the_runtime<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

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
        self.recv_driving(None).await
    }

    /// Queues the driver's next message when everything queued has gone into the channel.
    fn refill(&mut self, driver: &mut Option<&mut dyn SessionDriver>) -> Result<(), ServiceError> {
        if self.outbound.queue.is_empty()
            && self.outbound.tx.is_some()
            && let Some(driver) = driver
            && let Some(message) = driver.next_message()
        {
            self.outbound.queue(&message)?;
        }
        Ok(())
    }

    /// Receives the next message while sending whatever is queued and, as the channel has
    /// room, what the driver still has to send.
    async fn recv_driving(
        &mut self,
        mut driver: Option<&mut dyn SessionDriver>,
    ) -> Result<Option<Message>, ServiceError> {
        loop {
            self.refill(&mut driver)?;
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
        let mut step = off_the_runtime(|| driver.start(ledger))?;
        loop {
            for message in &step.send {
                self.outbound.queue(message)?;
            }
            if step.finished {
                // This side's last messages, then the end (as `flush`: without reading).
                while let Some(message) = driver.next_message() {
                    self.outbound.queue(&message)?;
                    self.outbound.flush().await?;
                }
                return Ok(());
            }
            let message = match self.recv_driving(Some(&mut *driver)).await? {
                None => {
                    return Err(ProtocolError::PeerClosed("before the session was complete").into());
                }
                Some(Message::Abort(reason)) => {
                    return Err(ProtocolError::PeerAborted(reason).into());
                }
                Some(message) => message,
            };
            step = off_the_runtime(|| driver.handle(message, ledger))?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::off_the_runtime;

    /// How many times a 5 ms ticker, queued on the only worker of a runtime, advanced while a
    /// task on that worker ran 400 ms of blocking work, inline or through `off_the_runtime`.
    fn ticks_during_blocking_work(through_helper: bool) -> u64 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let ticks = Arc::new(AtomicU64::new(0));
            let ticker = {
                let ticks = Arc::clone(&ticks);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            let worker = {
                let ticks = Arc::clone(&ticks);
                tokio::spawn(async move {
                    let work = || {
                        let before = ticks.load(Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(400));
                        ticks.load(Ordering::Relaxed) - before
                    };
                    if through_helper {
                        off_the_runtime(work)
                    } else {
                        work()
                    }
                })
            };
            let advanced = worker.await.expect("worker task");
            ticker.abort();
            advanced
        })
    }

    #[test]
    fn blocking_driver_work_does_not_starve_the_connection_tasks() {
        // Inline, the only worker is blocked and nothing else on it runs: this is how a long
        // grouped-PSI step kept the HTTP/2 connection from answering keep-alive pings.
        assert_eq!(ticks_during_blocking_work(false), 0);
        // Through the helper another thread takes the worker's queue and the ticker runs on.
        assert!(ticks_during_blocking_work(true) >= 3);
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_the_work_runs_inline() {
        assert_eq!(off_the_runtime(|| 7), 7);
    }
}
