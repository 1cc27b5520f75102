//! The small shell every mode runs in: it reassembles the chunks of the logical message the
//! current state awaits (under that state's bound), hands the whole message to the state's
//! `handle`, which consumes the state and returns the next one, and keeps the end states
//! (waiting for the peer's `done`, finished, failed) and the outcome.
//!
//! A mode is one module per mode (`cardinality`, `exact`, `validate`, `fuzzy`,
//! `clk_exchange`) with a struct per awaited message implementing [`State`]; the shell knows
//! nothing about modes beyond calling their `start`.

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

    /// Handles that message (its reassembled bytes), consuming this state.
    fn handle(
        self: Box<Self>,
        cx: &mut Context,
        ledger: &mut DisclosureLedger,
        bytes: Vec<u8>,
    ) -> Result<Transition, ProtocolError>;
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
    pub(crate) next: Next,
}

impl Transition {
    pub(crate) fn new(send: Vec<Message>, next: Next) -> Self {
        Self { send, next }
    }

    pub(crate) fn to(send: Vec<Message>, state: impl State + 'static) -> Self {
        Self::new(send, Next::Await(Box::new(state)))
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
}

impl Shell {
    pub(crate) fn new(cx: Context, config: ModeConfig) -> Self {
        Self {
            cx,
            config,
            phase: Phase::Created,
            outcome: None,
        }
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
            Phase::Running { state, assembly } => {
                let expect = state.expects();
                let chunk = match message {
                    Message::Mode(chunk) => chunk,
                    other => return Err(unexpected(&other, state.name(), expect.kind.name())),
                };
                let mut assembly = assembly
                    .unwrap_or_else(|| Reassembly::new(expect.kind, expect.round, expect.limit));
                let Some(bytes) = assembly.push(chunk, state.name())? else {
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
        let Transition { mut send, next } = transition;
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
                send.push(Message::Done);
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
