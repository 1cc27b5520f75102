//! The handshake: both sides commit to protocol version, mode, schema, parameters and the
//! linkage key (through a key-check value), and any difference ends the session on both sides
//! with an error that says what differs, from each side's point of view.
//!
//! The initiator sends its [`Hello`]; the responder *always* answers a well-formed hello with its
//! own, even when they differ, so that each side compares the two hellos itself and reports the
//! difference in its own terms ("peer uses field 'address' that this side does not"). Both
//! comparisons are the same function of the same two hellos, so both sides agree on whether the
//! session goes on.

use std::fmt;

use crate::ProtocolError;
use crate::hello::{Hello, KeyCheck, PROTOCOL_VERSION, Parameters, SchemaDescriptor};
use crate::message::Message;
use crate::mode::Mode;
use crate::session::{Role, SessionId};

/// What this side brings to a session: the mode it wants, its schema and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOffer {
    /// The mode to run.
    pub mode: Mode,
    /// The fields this side encodes.
    pub schema: SchemaDescriptor,
    /// The encoding and matching parameters.
    pub parameters: Parameters,
}

impl SessionOffer {
    fn hello(&self, session_id: SessionId, key_check: KeyCheck) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            session_id,
            mode: self.mode,
            schema: self.schema.clone(),
            schema_digest: self.schema.digest(),
            parameters: self.parameters.clone(),
            parameter_digest: self.parameters.digest(),
            key_check,
        }
    }

    /// Compares our hello with the peer's: the first difference, in a fixed order so both
    /// sides report the same kind of difference.
    fn compare(&self, theirs: &Hello, expected_key_check: &KeyCheck) -> Result<(), ProtocolError> {
        if theirs.version != PROTOCOL_VERSION {
            return Err(ProtocolError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: theirs.version,
            });
        }
        if theirs.schema.digest() != theirs.schema_digest {
            return Err(ProtocolError::Invalid {
                what: "hello schema digest",
                reason: "it does not match the fields the peer lists".to_owned(),
            });
        }
        if theirs.parameters.digest() != theirs.parameter_digest {
            return Err(ProtocolError::Invalid {
                what: "hello parameter digest",
                reason: "it does not match the parameters the peer lists".to_owned(),
            });
        }
        if theirs.mode != self.mode {
            return Err(ProtocolError::ModeMismatch {
                ours: self.mode.to_string(),
                theirs: theirs.mode.to_string(),
            });
        }
        if let Some(diff) = self.schema.describe_difference(&theirs.schema) {
            return Err(ProtocolError::SchemaMismatch(diff));
        }
        if let Some(diff) = self.parameters.describe_difference(&theirs.parameters) {
            return Err(ProtocolError::ParameterMismatch(diff));
        }
        if !theirs.key_check.matches(expected_key_check) {
            return Err(ProtocolError::KeyMismatch);
        }
        Ok(())
    }
}

/// A session both sides agreed on: what the mode drivers start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishedSession {
    /// The session id.
    pub session_id: SessionId,
    /// This side's role.
    pub role: Role,
    /// The agreed mode.
    pub mode: Mode,
    /// The agreed schema.
    pub schema: SchemaDescriptor,
    /// The agreed parameters.
    pub parameters: Parameters,
    /// The hello this side sent (for the transcript).
    pub sent_hello: Box<Hello>,
    /// The hello this side received (for the transcript).
    pub received_hello: Box<Hello>,
}

/// The initiator before it has sent its hello.
#[derive(Debug)]
pub struct InitiatorHandshake;

impl InitiatorHandshake {
    /// Starts a session: returns the hello to send and the state that waits for the answer.
    ///
    /// # Security
    /// The secret is used only to compute the two key-check values and is not kept.
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::*;
    /// let offer = SessionOffer {
    ///     mode: Mode::Exact,
    ///     schema: SchemaDescriptor::new([("name", "text")]).unwrap(),
    ///     parameters: Parameters::default(),
    /// };
    /// let sid = SessionId::from_bytes([1; 16]);
    /// let (waiting, hello) = InitiatorHandshake::start(offer.clone(), b"k", sid);
    /// let answer = ResponderHandshake::new(offer, b"k").handle(hello);
    /// let responder = answer.result.unwrap();
    /// let initiator = waiting.handle(answer.reply.unwrap()).unwrap();
    /// assert_eq!(initiator.session_id, responder.session_id);
    /// ```
    #[must_use]
    pub fn start(
        offer: SessionOffer,
        secret: &[u8],
        session_id: SessionId,
    ) -> (AwaitingResponderHello, Message) {
        let ours = KeyCheck::derive(secret, session_id, Role::Initiator);
        let expected = KeyCheck::derive(secret, session_id, Role::Responder);
        let hello = Box::new(offer.hello(session_id, ours));
        (
            AwaitingResponderHello {
                offer,
                session_id,
                expected,
                sent: hello.clone(),
            },
            Message::Hello(hello),
        )
    }
}

/// The initiator after sending its hello.
#[derive(Debug)]
pub struct AwaitingResponderHello {
    offer: SessionOffer,
    session_id: SessionId,
    expected: KeyCheck,
    sent: Box<Hello>,
}

impl AwaitingResponderHello {
    /// Handles the responder's answer.
    ///
    /// # Errors
    /// Any difference between the hellos; an abort from the responder; any other message.
    pub fn handle(self, message: Message) -> Result<EstablishedSession, ProtocolError> {
        let theirs = match message {
            Message::Hello(hello) => hello,
            Message::Abort(reason) => return Err(ProtocolError::PeerAborted(reason)),
            other => {
                return Err(ProtocolError::UnexpectedMessage {
                    got: other.kind().name(),
                    state: "during the handshake",
                    expected: "the responder's hello",
                });
            }
        };
        if theirs.session_id != self.session_id {
            return Err(ProtocolError::SessionMismatch {
                ours: self.session_id.to_string(),
                theirs: theirs.session_id.to_string(),
            });
        }
        self.offer.compare(&theirs, &self.expected)?;
        Ok(EstablishedSession {
            session_id: self.session_id,
            role: Role::Initiator,
            mode: self.offer.mode,
            schema: self.offer.schema,
            parameters: self.offer.parameters,
            sent_hello: self.sent,
            received_hello: theirs,
        })
    }
}

/// The responder waiting for the initiator's hello.
pub struct ResponderHandshake {
    offer: SessionOffer,
    secret: zeroize::Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ResponderHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponderHandshake")
            .field("offer", &self.offer)
            .finish_non_exhaustive()
    }
}

/// The responder's answer to the first message of a session.
#[derive(Debug)]
pub struct ResponderAnswer {
    /// The responder's own hello, sent whenever the first message was a well-formed hello (even
    /// when the hellos differ, so the initiator can name the difference itself).
    pub reply: Option<Message>,
    /// The established session, or what differed.
    pub result: Result<EstablishedSession, ProtocolError>,
}

impl ResponderHandshake {
    /// Prepares to answer one hello.
    ///
    /// # Security
    /// The secret is copied into a buffer that is zeroized when this state is dropped; the
    /// session id it is bound to is known only when the hello arrives.
    #[must_use]
    pub fn new(offer: SessionOffer, secret: &[u8]) -> Self {
        Self {
            offer,
            secret: zeroize::Zeroizing::new(secret.to_vec()),
        }
    }

    /// Handles the initiator's first message.
    #[must_use]
    pub fn handle(self, message: Message) -> ResponderAnswer {
        let theirs = match message {
            Message::Hello(hello) => hello,
            Message::Abort(reason) => {
                return ResponderAnswer {
                    reply: None,
                    result: Err(ProtocolError::PeerAborted(reason)),
                };
            }
            other => {
                return ResponderAnswer {
                    reply: None,
                    result: Err(ProtocolError::UnexpectedMessage {
                        got: other.kind().name(),
                        state: "at the start of a session",
                        expected: "the initiator's hello",
                    }),
                };
            }
        };
        let session_id = theirs.session_id;
        let ours = KeyCheck::derive(&self.secret, session_id, Role::Responder);
        let expected = KeyCheck::derive(&self.secret, session_id, Role::Initiator);
        let sent = Box::new(self.offer.hello(session_id, ours));
        let reply = Message::Hello(sent.clone());
        let result = self
            .offer
            .compare(&theirs, &expected)
            .map(|()| EstablishedSession {
                session_id,
                role: Role::Responder,
                mode: self.offer.mode,
                schema: self.offer.schema.clone(),
                parameters: self.offer.parameters.clone(),
                sent_hello: sent,
                received_hello: theirs,
            });
        ResponderAnswer {
            reply: Some(reply),
            result,
        }
    }
}
