//! A linkage mode's driver fed a hostile peer's frames. Byte 0 picks the mode and the role
//! (`blindlink_fuzz::driver_setup`), the rest is a transcript of length-prefixed frames
//! (`blindlink_fuzz::frames`). This reaches the mode payload decoders (intersection sizes,
//! field/candidate/all CLKs, pair scores, link ids, chunk reassembly), which are private to
//! `blindlink-protocol`, through their only public door.
//!
//! Properties: the driver answers every frame or fails with a `ProtocolError`, never a panic;
//! every message it sends encodes and decodes back; after it finishes or fails it is not fed
//! again (a transport ends the session then).
#![no_main]

use blindlink_fuzz::{driver, driver_setup, encode_own, frames};
use blindlink_protocol::{DisclosureLedger, Message, SessionDriver, SessionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, transcript)) = data.split_first() else {
        return;
    };
    let (config, party, role) = driver_setup(selector);
    let mut driver = driver(&config, party, role);
    let peer = if role == blindlink_protocol::Role::Initiator {
        "responder"
    } else {
        "initiator"
    };
    let mut ledger =
        DisclosureLedger::new(SessionId::from_bytes([0; 16]), role, config.mode(), peer);
    let Ok(step) = driver.start(&mut ledger) else {
        return;
    };
    step.send.iter().for_each(|m| drop(encode_own(m)));
    if step.finished {
        return;
    }
    for frame in frames(transcript) {
        let Ok(message) = Message::decode(frame) else {
            return;
        };
        if matches!(message, Message::Abort(_)) {
            // The transport handles aborts; drivers never see them.
            return;
        }
        let Ok(step) = driver.handle(message, &mut ledger) else {
            return;
        };
        step.send.iter().for_each(|m| drop(encode_own(m)));
        if step.finished {
            return;
        }
    }
});
