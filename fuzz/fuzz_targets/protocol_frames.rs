//! `Message::decode` on one arbitrary frame, then the handshake states and the ping drivers
//! that consume a decoded message.
//!
//! Properties: decoding never panics; a frame that decodes re-encodes to exactly the same
//! bytes (the framing is canonical); each handshake side accepts a hello only when it is, field
//! for field, the honest peer's hello for that session (same version, mode, schema, parameters,
//! digests and key-check value), and any hello it sends back encodes and decodes; the ping
//! drivers answer or fail with a `ProtocolError`.
#![no_main]

use blindlink_fuzz::{SECRET, SESSION, encode_own, handshake_offer};
use blindlink_protocol::{
    DisclosureLedger, InitiatorHandshake, Message, Mode, PingInitiator, PingResponder,
    ResponderHandshake, Role, SessionDriver,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let encoded = message
        .encode()
        .unwrap_or_else(|e| panic!("a decoded {} does not encode: {e}", message.kind().name()));
    assert_eq!(
        encoded,
        data,
        "{} framing is not canonical",
        message.kind().name()
    );

    // The responder's handshake, for whatever session the hello names.
    let answer = ResponderHandshake::new(handshake_offer(), SECRET).handle(message.clone());
    if let Some(reply) = &answer.reply {
        let _ = encode_own(reply);
    }
    if answer.result.is_ok() {
        let Message::Hello(hello) = &message else {
            panic!(
                "the responder accepted a {} as a hello",
                message.kind().name()
            );
        };
        let (_, honest) = InitiatorHandshake::start(handshake_offer(), SECRET, hello.session_id);
        assert_eq!(
            message, honest,
            "the responder accepted a hello that differs from the honest one"
        );
    }

    // The initiator's handshake, waiting for the responder's hello to its own.
    let (waiting, _) = InitiatorHandshake::start(handshake_offer(), SECRET, SESSION);
    if waiting.handle(message.clone()).is_ok() {
        let answer = ResponderHandshake::new(handshake_offer(), SECRET)
            .handle(InitiatorHandshake::start(handshake_offer(), SECRET, SESSION).1);
        let honest = answer.reply.expect("the honest responder answers");
        assert_eq!(
            message, honest,
            "the initiator accepted a hello that differs from the honest one"
        );
    }

    // The ping drivers after their first step.
    let mut ledger = DisclosureLedger::new(SESSION, Role::Initiator, Mode::Exact, "responder");
    let mut initiator = PingInitiator::new(2, 16, 7);
    let _ = initiator.start(&mut ledger);
    if let Ok(step) = initiator.handle(message.clone(), &mut ledger) {
        step.send.iter().for_each(|m| drop(encode_own(m)));
    }
    let mut ledger = DisclosureLedger::new(SESSION, Role::Responder, Mode::Exact, "initiator");
    let mut responder = PingResponder::default();
    let _ = responder.start(&mut ledger);
    if let Ok(step) = responder.handle(message, &mut ledger) {
        step.send.iter().for_each(|m| drop(encode_own(m)));
    }
});
