//! The small shell every mode runs in: it reassembles the chunks of the logical message the
//! current state awaits (under that state's bound), hands the whole message to the state's
//! `handle`, which consumes the state and returns the next one, and keeps the end states
//! (waiting for the peer's `done`, finished, failed) and the outcome.
//!
//! Two seams keep a large message from being held whole. A step may hand over its messages
//! as [`MessageSource`]s (in [`Transition::stream`]), which the shell gives the transport a
//! chunk at a time through [`Shell::next_message`], when it has room; and a state may decode
//! its message as the chunks arrive ([`State::decoder`]) instead of the shell reassembling
//! its bytes first. Both are used by the mutual PSI (`exact`, and `validate`'s ID PSI); the
//! other states send whole messages and take reassembled bytes.
//!
//! A mode is one module per mode (`cardinality`, `exact`, `validate`, `fuzzy`,
//! `clk_exchange`) with a struct per awaited message implementing [`State`]; the shell knows
//! nothing about modes beyond calling their `start`.

use std::collections::VecDeque;

use crate::{DisclosureLedger, DriverStep, Message, MessageKind, ProtocolError};

use super::chunks::Reassembly;
use super::common::Context;
use super::{LinkOutcome, ModeConfig, cardinality, clk_exchange, exact, fuzzy, validate};

/// The logical message a state waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// Its kind.
    pub(crate) kind: MessageKind,
    /// Its round.
    pub(crate) round: u16,
    /// The most bytes it may take, reassembled.
    pub(crate) limit: usize,
}

/// One point of a mode where this side waits for one logical message from the peer.
pub(crate) trait State: Send {
    /// Where in the session this side is, for errors ("while waiting for ...").
    fn name(&self) -> &'static str;

    /// The message it waits for.
    fn expects(&self) -> Expect;

    /// A state that decodes its message as the chunks arrive returns its decoder: the shell
    /// then checks each chunk's kind, round and the running length against [`Self::expects`]
    /// as for a reassembled message, hands the decoder each payload, and calls
    /// [`Self::handle`] with no bytes after the last chunk. `None` (the default): the shell
    /// reassembles the message and hands over its bytes.
    fn decoder(&mut self) -> Option<&mut dyn ChunkDecoder> {
        None
    }

    /// Handles that message (its reassembled bytes, or none for a state with a
    /// [`Self::decoder`]), consuming this state.
    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError>;
}

/// A state's message decoded as its chunks arrive.
pub(crate) trait ChunkDecoder: Send {
    /// Takes the next chunk's payload.
    fn push(&mut self, payload: &[u8]) -> Result<(), ProtocolError>;
}

/// A message handed to the transport a chunk at a time: each call makes the next chunk (the
/// last one marked `last`), then gives `None`.
pub(crate) trait MessageSource: Send {
    fn next_chunk(&mut self) -> Option<Message>;
}

/// Messages already made, handed over in order.
struct Ready(std::vec::IntoIter<Message>);

impl MessageSource for Ready {
    fn next_chunk(&mut self) -> Option<Message> {
        self.0.next()
    }
}

/// What follows a step of a mode.
pub(crate) enum Next {
    /// Wait for another message.
    Await(Box<dyn State>),
    /// This side's part is over; wait for the peer's `done`.
    AwaitDone,
    /// This side ends the session: it sends `done` and finishes.
    Finish,
}

/// The messages a step sends and what follows.
pub(crate) struct Transition {
    pub(crate) send: Vec<Message>,
    /// Sent after `send`, in order, a chunk at a time as the transport has room.
    pub(crate) stream: Vec<Box<dyn MessageSource>>,
    pub(crate) next: Next,
}

impl Transition {
    pub(crate) fn new(send: Vec<Message>, next: Next) -> Self {
        Self {
            send,
            stream: Vec::new(),
            next,
        }
    }

    pub(crate) fn to(send: Vec<Message>, state: impl State + 'static) -> Self {
        Self::new(send, Next::Await(Box::new(state)))
    }

    /// Sends `source` (if any), then waits in `state`.
    pub(crate) fn streamed_to(
        source: Option<Box<dyn MessageSource>>,
        state: impl State + 'static,
    ) -> Self {
        Self {
            send: Vec::new(),
            stream: source.into_iter().collect(),
            next: Next::Await(Box::new(state)),
        }
    }

    /// This transition with `source` sent before its own messages.
    pub(crate) fn preceded_by(mut self, source: Option<Box<dyn MessageSource>>) -> Self {
        if let Some(source) = source {
            let send = std::mem::take(&mut self.send);
            let mut stream: Vec<Box<dyn MessageSource>> = vec![source];
            if !send.is_empty() {
                stream.push(Box::new(Ready(send.into_iter())));
            }
            stream.append(&mut self.stream);
            self.stream = stream;
        }
        self
    }
}

enum Phase {
    /// Built, `start` not called yet.
    Created,
    Running {
        state: Box<dyn State>,
        assembly: Option<Reassembly>,
    },
    AwaitingDone,
    Finished,
    Failed,
}

/// One role of one mode: the context and the phase.
pub(crate) struct Shell {
    cx: Context,
    config: ModeConfig,
    phase: Phase,
    outcome: Option<LinkOutcome>,
    /// Messages of the steps so far not yet handed to the transport, in order.
    outgoing: VecDeque<Box<dyn MessageSource>>,
}

impl Shell {
    pub(crate) fn new(cx: Context, config: ModeConfig) -> Self {
        Self {
            cx,
            config,
            phase: Phase::Created,
            outcome: None,
            outgoing: VecDeque::new(),
        }
    }

    /// The next chunk of the messages the steps so far left to make (see
    /// [`crate::SessionDriver::next_message`]).
    pub(crate) fn next_message(&mut self) -> Option<Message> {
        while let Some(source) = self.outgoing.front_mut() {
            if let Some(message) = source.next_chunk() {
                return Some(message);
            }
            self.outgoing.pop_front();
        }
        None
    }

    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// The outcome, once finished, moved out (a copy of one row per record is the largest
    /// thing a finished session holds).
    pub(crate) fn take_outcome(&mut self) -> Option<LinkOutcome> {
        self.outcome.take()
    }

    pub(crate) fn start(
        &mut self,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        if !matches!(self.phase, Phase::Created) {
            return Err(self.fail(ProtocolError::Local {
                what: "mode driver",
                reason: "started twice".into(),
            }));
        }
        self.cx.session = *ledger.session_id.as_bytes();
        let cx = &mut self.cx;
        let started = match &self.config {
            ModeConfig::Cardinality(c) => cardinality::start(cx, ledger, c),
            ModeConfig::Exact(c) => exact::start(cx, ledger, c),
            ModeConfig::Validate(c) => validate::start(cx, ledger, c),
            ModeConfig::Fuzzy(c) => fuzzy::start(cx, ledger, c),
            ModeConfig::ClkExchange(c) => clk_exchange::start(cx, ledger, c),
        };
        match started {
            Ok(transition) => Ok(self.apply(transition)),
            Err(e) => Err(self.fail(e)),
        }
    }

    pub(crate) fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        match self.handle_inner(message, ledger) {
            Ok(step) => Ok(step),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.phase = Phase::Failed;
        self.outgoing.clear();
        error
    }

    fn handle_inner(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        let unexpected = |got: &Message, state: &'static str, expected: &'static str| {
            ProtocolError::UnexpectedMessage {
                got: got.kind().name(),
                state,
                expected,
            }
        };
        match std::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::Created => Err(unexpected(&message, "before the mode started", "nothing")),
            Phase::AwaitingDone => match message {
                Message::Done => {
                    self.finish();
                    Ok(DriverStep {
                        send: Vec::new(),
                        finished: true,
                    })
                }
                other => Err(unexpected(
                    &other,
                    "while waiting for the end of the session",
                    "done",
                )),
            },
            Phase::Finished => Err(unexpected(
                &message,
                "after the session finished",
                "nothing",
            )),
            Phase::Failed => Err(unexpected(&message, "after the session failed", "nothing")),
            Phase::Running {
                mut state,
                assembly,
            } => {
                let expect = state.expects();
                let name = state.name();
                let chunk = match message {
                    Message::Mode(chunk) => chunk,
                    other => return Err(unexpected(&other, name, expect.kind.name())),
                };
                let mut assembly = assembly
                    .unwrap_or_else(|| Reassembly::new(expect.kind, expect.round, expect.limit));
                let complete = match state.decoder() {
                    Some(decoder) => {
                        assembly.admit(&chunk, name)?;
                        decoder.push(&chunk.payload)?;
                        chunk.last.then(Vec::new)
                    }
                    None => assembly.push(chunk, name)?,
                };
                let Some(bytes) = complete else {
                    self.phase = Phase::Running {
                        state,
                        assembly: Some(assembly),
                    };
                    return Ok(DriverStep::default());
                };
                let transition = state.handle(&mut self.cx, ledger, bytes)?;
                Ok(self.apply(transition))
            }
        }
    }

    fn apply(&mut self, transition: Transition) -> DriverStep {
        let Transition {
            mut send,
            stream,
            next,
        } = transition;
        // What the transport has not taken yet goes first: this step's messages follow it.
        if !self.outgoing.is_empty() || !stream.is_empty() {
            if !send.is_empty() {
                self.outgoing
                    .push_back(Box::new(Ready(std::mem::take(&mut send).into_iter())));
            }
            self.outgoing.extend(stream);
        }
        let finished = match next {
            Next::Await(state) => {
                self.phase = Phase::Running {
                    state,
                    assembly: None,
                };
                false
            }
            Next::AwaitDone => {
                self.phase = Phase::AwaitingDone;
                false
            }
            Next::Finish => {
                if self.outgoing.is_empty() {
                    send.push(Message::Done);
                } else {
                    self.outgoing
                        .push_back(Box::new(Ready(vec![Message::Done].into_iter())));
                }
                self.finish();
                true
            }
        };
        DriverStep { send, finished }
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        self.outcome = Some(self.cx.outcome(self.config.mode(), self.config.keys()));
    }
}
