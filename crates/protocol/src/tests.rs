//! Unit tests of the handshake, framing and ledger: golden vectors from
//! `scripts/protocol_vectors.py`, one-line mismatch cases, bad frames with their exact errors,
//! and property tests that decoding never panics.

use proptest::prelude::*;

use crate::*;

fn sid(b: u8) -> SessionId {
    SessionId::from_bytes([b; 16])
}

fn offer(mode: Mode, fields: &[(&str, &str)], params: &[(&str, &str)]) -> SessionOffer {
    SessionOffer {
        mode,
        schema: SchemaDescriptor::new(fields.iter().copied()).unwrap(),
        parameters: Parameters::new(params.iter().copied()).unwrap(),
    }
}

const FIELDS: &[(&str, &str)] = &[("name", "text"), ("dob", "date"), ("sex", "sex")];
const PARAMS: &[(&str, &str)] = &[("filter_bits", "1024"), ("hashes", "20")];

/// Runs a handshake in memory and returns (initiator outcome, responder outcome) as text.
fn run(initiator: SessionOffer, responder: SessionOffer, k1: &[u8], k2: &[u8]) -> (String, String) {
    let (waiting, hello) = InitiatorHandshake::start(initiator, k1, sid(9));
    let frame = hello.encode().unwrap();
    let answer = ResponderHandshake::new(responder, k2).handle(Message::decode(&frame).unwrap());
    let responder_outcome = match &answer.result {
        Ok(s) => format!("ok {} {}", s.role, s.mode),
        Err(e) => e.to_string(),
    };
    let reply = Message::decode(&answer.reply.unwrap().encode().unwrap()).unwrap();
    let initiator_outcome = match waiting.handle(reply) {
        Ok(s) => format!("ok {} {}", s.role, s.mode),
        Err(e) => e.to_string(),
    };
    (initiator_outcome, responder_outcome)
}

fn check(initiator: SessionOffer, responder: SessionOffer, k2: &[u8], expected: (&str, &str)) {
    let got = run(initiator, responder, b"shared secret", k2);
    assert_eq!((got.0.as_str(), got.1.as_str()), expected);
}

#[test]
fn handshake_outcomes() {
    let base = || offer(Mode::Exact, FIELDS, PARAMS);
    let k = b"shared secret".as_slice();
    check(
        base(),
        base(),
        k,
        ("ok initiator exact", "ok responder exact"),
    );
    check(
        base(),
        offer(Mode::Validate, FIELDS, PARAMS),
        k,
        (
            "mode differs: this side exact, peer validate",
            "mode differs: this side validate, peer exact",
        ),
    );
    check(
        base(),
        offer(
            Mode::Exact,
            &[
                ("name", "text"),
                ("dob", "date"),
                ("sex", "sex"),
                ("address", "text"),
            ],
            PARAMS,
        ),
        k,
        (
            "schema digest differs: peer uses field 'address' that this side does not",
            "schema digest differs: this side uses field 'address' that the peer does not",
        ),
    );
    check(
        base(),
        offer(
            Mode::Exact,
            &[("name", "text"), ("dob", "text"), ("sex", "sex")],
            PARAMS,
        ),
        k,
        (
            "schema digest differs: field 'dob' is 'date' on this side and 'text' on the peer",
            "schema digest differs: field 'dob' is 'text' on this side and 'date' on the peer",
        ),
    );
    check(
        base(),
        offer(
            Mode::Exact,
            &[("dob", "date"), ("name", "text"), ("sex", "sex")],
            PARAMS,
        ),
        k,
        (
            "schema digest differs: fields are in a different order (this side: name, dob, sex; peer: dob, name, sex)",
            "schema digest differs: fields are in a different order (this side: dob, name, sex; peer: name, dob, sex)",
        ),
    );
    check(
        base(),
        offer(
            Mode::Exact,
            FIELDS,
            &[("filter_bits", "2048"), ("hashes", "20")],
        ),
        k,
        (
            "parameter digest differs: parameter 'filter_bits' is '1024' on this side and '2048' on the peer",
            "parameter digest differs: parameter 'filter_bits' is '2048' on this side and '1024' on the peer",
        ),
    );
    check(
        base(),
        offer(Mode::Exact, FIELDS, &[("filter_bits", "1024")]),
        k,
        (
            "parameter digest differs: this side sets parameter 'hashes' that the peer does not",
            "parameter digest differs: peer sets parameter 'hashes' that this side does not",
        ),
    );
    check(
        base(),
        base(),
        b"another secret",
        (
            "linkage key differs (key-check value mismatch)",
            "linkage key differs (key-check value mismatch)",
        ),
    );
    // A secret that differs only by a trailing newline is a different key.
    check(
        base(),
        base(),
        b"shared secret\n",
        (
            "linkage key differs (key-check value mismatch)",
            "linkage key differs (key-check value mismatch)",
        ),
    );
}

#[test]
fn key_check_golden_vectors() {
    let check = |role, expected: &str| {
        assert_eq!(
            hex::encode(KeyCheck::derive(b"secret", sid(7), role).as_bytes()),
            expected
        );
    };
    check(
        Role::Initiator,
        "c48d8d643ccf4401e7e67796fb97f4d7178dececfd72b046073941c14aa0ee4e",
    );
    check(
        Role::Responder,
        "9a60a01ab9f813db3d2d888e9dc37a3270cbe8aa5c1cae5f429c000f9f5c098f",
    );
}

#[test]
fn digest_golden_vectors() {
    let schema = SchemaDescriptor::new([("name", "text"), ("dob", "date")]).unwrap();
    assert_eq!(
        hex::encode(schema.digest()),
        "0f4a1ebe6f03a571ef530cf32561b54ab1ca7d7c8b54fef085b623b043c7a042"
    );
    let params = Parameters::new([("filter_bits", "1024")]).unwrap();
    assert_eq!(
        hex::encode(params.digest()),
        "5794a185b1460f75e3cdc092dcfcedd4cfad51b9933f454ea0c464e534565c2d"
    );
}

#[test]
fn reflected_key_check_is_refused() {
    // A responder without the key that echoes the initiator's own hello back.
    let (waiting, hello) =
        InitiatorHandshake::start(offer(Mode::Exact, FIELDS, PARAMS), b"k", sid(1));
    assert_eq!(
        waiting.handle(hello).unwrap_err().to_string(),
        "linkage key differs (key-check value mismatch)"
    );
}

#[test]
fn responder_answers_for_another_session() {
    let (waiting, _) = InitiatorHandshake::start(offer(Mode::Exact, FIELDS, PARAMS), b"k", sid(1));
    let (_, other) = InitiatorHandshake::start(offer(Mode::Exact, FIELDS, PARAMS), b"k", sid(2));
    let answer = ResponderHandshake::new(offer(Mode::Exact, FIELDS, PARAMS), b"k").handle(other);
    assert_eq!(
        waiting
            .handle(answer.reply.unwrap())
            .unwrap_err()
            .to_string(),
        "session id differs: this side started 01010101010101010101010101010101, \
         peer answered for 02020202020202020202020202020202"
    );
}

#[test]
fn out_of_order_and_abort() {
    let ping = Message::Ping(Ping {
        sequence: 0,
        payload: vec![],
    });
    let answer =
        ResponderHandshake::new(offer(Mode::Exact, FIELDS, PARAMS), b"k").handle(ping.clone());
    assert!(answer.reply.is_none());
    assert_eq!(
        answer.result.unwrap_err().to_string(),
        "unexpected message 'ping' at the start of a session: expected the initiator's hello"
    );
    let (waiting, _) = InitiatorHandshake::start(offer(Mode::Exact, FIELDS, PARAMS), b"k", sid(1));
    assert_eq!(
        waiting.handle(ping).unwrap_err().to_string(),
        "unexpected message 'ping' during the handshake: expected the responder's hello"
    );
    let (waiting, _) = InitiatorHandshake::start(offer(Mode::Exact, FIELDS, PARAMS), b"k", sid(1));
    assert_eq!(
        waiting
            .handle(Message::abort("busy\nnow"))
            .unwrap_err()
            .to_string(),
        "peer aborted the session: busy?now"
    );
}

fn check_decode(frame: &[u8], expected: &str) {
    assert_eq!(
        Message::decode(frame).unwrap_err().to_string(),
        expected,
        "frame {frame:02x?}"
    );
}

fn hello_frame() -> Vec<u8> {
    let (_, hello) = InitiatorHandshake::start(offer(Mode::Exact, FIELDS, PARAMS), b"k", sid(3));
    hello.encode().unwrap()
}

#[test]
fn bad_frames() {
    check_decode(&[], "empty message (no kind byte)");
    check_decode(&[0x7f], "unknown message kind 0x7f");
    check_decode(
        &[0x03, 0],
        "message of kind 'done' is 2 bytes, over its limit of 1 bytes",
    );
    check_decode(
        &[0x11, 0, 0, 0, 1, 0, 0, 0, 0, 9],
        "trailing data after pong: 1 bytes",
    );
    check_decode(
        &[0x10, 0, 0, 0],
        "truncated ping sequence: 4 more bytes needed, 3 available",
    );
    check_decode(
        &[0x10, 0, 0, 0, 1, 0, 0, 0, 3, 1],
        "truncated ping payload: 3 more bytes needed, 1 available",
    );
    check_decode(
        &[0x10, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
        "invalid ping payload: length 4294967295 is over the limit of 65536 bytes",
    );
    check_decode(
        &[0x02, 0, 2, b'a', b'\n'],
        "invalid abort reason: contains a control character",
    );
    check_decode(
        &[0x02, 0, 2, 0xc3, 0x28],
        "invalid abort reason: not valid utf-8",
    );
    check_decode(
        &[0x01, 0, 2],
        "protocol version differs: this side speaks 1, peer 2",
    );
    check_decode(
        &[0x01, 0, 1],
        "truncated hello session id: 16 more bytes needed, 0 available",
    );
    let big = vec![0x11; MessageKind::Pong.max_frame_len() + 1];
    check_decode(
        &big,
        "message of kind 'pong' is 65546 bytes, over its limit of 65545 bytes",
    );

    let mut trailing = hello_frame();
    trailing.push(0);
    check_decode(&trailing, "trailing data after hello: 1 bytes");
    let mut bad_mode = hello_frame();
    bad_mode[19] = 9;
    check_decode(&bad_mode, "invalid hello mode: unknown mode byte 9");
}

#[test]
fn forged_digest_is_refused() {
    let mut frame = hello_frame();
    // The schema digest sits right after the schema; flip its first byte.
    let schema_len = 1 + FIELDS
        .iter()
        .map(|(n, k)| 4 + n.len() + k.len())
        .sum::<usize>();
    frame[1 + 2 + 16 + 1 + schema_len] ^= 1;
    let answer = ResponderHandshake::new(offer(Mode::Exact, FIELDS, PARAMS), b"k")
        .handle(Message::decode(&frame).unwrap());
    assert_eq!(
        answer.result.unwrap_err().to_string(),
        "invalid hello schema digest: it does not match the fields the peer lists"
    );
}

#[test]
fn schema_and_parameter_validation() {
    let err = |r: Result<SchemaDescriptor, ProtocolError>| r.unwrap_err().to_string();
    assert_eq!(
        err(SchemaDescriptor::new([("", "text")])),
        "invalid schema field name: field 1 has an empty name"
    );
    assert_eq!(
        err(SchemaDescriptor::new([("a", "t"), ("a", "u")])),
        "invalid schema: field 'a' is listed twice"
    );
    assert_eq!(
        err(SchemaDescriptor::new([("a\tb", "t")])),
        "invalid schema field name: contains a control character"
    );
    let many: Vec<(String, String)> = (0..65).map(|i| (format!("f{i}"), "t".to_owned())).collect();
    assert_eq!(
        err(SchemaDescriptor::new(many)),
        "invalid schema: 65 fields, over the limit of 64"
    );
    assert_eq!(
        Parameters::new([("x", "v".repeat(257))])
            .unwrap_err()
            .to_string(),
        "invalid parameter value: length 257 is over the limit of 256 bytes"
    );
    assert_eq!("exact".parse::<Mode>().unwrap(), Mode::Exact);
    assert_eq!("clk-exchange".parse::<Mode>().unwrap(), Mode::ClkExchange);
    assert_eq!(
        "fuzzzy".parse::<Mode>().unwrap_err().to_string(),
        "invalid mode: 'fuzzzy' is not one of cardinality, exact, validate, fuzzy, clk-exchange"
    );
}

#[test]
fn largest_hello_fits_its_bound() {
    let fields: Vec<(String, String)> = (0..64)
        .map(|i| (format!("{i:0>64}"), "t".repeat(64)))
        .collect();
    let params: Vec<(String, String)> = (0..64)
        .map(|i| (format!("{i:0>64}"), "v".repeat(256)))
        .collect();
    let offer = SessionOffer {
        mode: Mode::ClkExchange,
        schema: SchemaDescriptor::new(fields).unwrap(),
        parameters: Parameters::new(params).unwrap(),
    };
    let (_, hello) = InitiatorHandshake::start(offer, b"k", sid(1));
    let frame = hello.encode().unwrap();
    assert_eq!(frame.len(), MessageKind::Hello.max_frame_len());
    assert_eq!(Message::decode(&frame).unwrap(), hello);
}

#[test]
fn ping_drivers_in_memory() {
    let mut ledger_a = DisclosureLedger::new(sid(1), Role::Initiator, Mode::Exact, "registry");
    let mut ledger_b = DisclosureLedger::new(sid(1), Role::Responder, Mode::Exact, "insurer");
    let mut a = PingInitiator::new(3, 100, 42);
    let mut b = PingResponder::default();
    let mut step = a.start(&mut ledger_a).unwrap();
    let mut rounds = 0;
    loop {
        let msg = step.send.pop().unwrap();
        let frame = msg.encode().unwrap();
        ledger_a.record_sent(msg.kind(), frame.len());
        ledger_b.record_received(msg.kind(), frame.len());
        let back = b
            .handle(Message::decode(&frame).unwrap(), &mut ledger_b)
            .unwrap();
        if back.finished {
            assert!(step.finished);
            break;
        }
        rounds += 1;
        step = a
            .handle(back.send.into_iter().next().unwrap(), &mut ledger_a)
            .unwrap();
    }
    assert_eq!((rounds, b.pings()), (3, 3));
    assert_eq!(
        ledger_a.sent.by_kind["ping"],
        TrafficCount {
            messages: 3,
            bytes: 3 * 109
        }
    );
    assert_eq!(
        ledger_a.sent.total,
        TrafficCount {
            messages: 4,
            bytes: 3 * 109 + 1
        }
    );
    // A pong that does not echo the ping is refused.
    let mut a = PingInitiator::new(1, 4, 1);
    a.start(&mut ledger_a).unwrap();
    assert_eq!(
        a.handle(
            Message::Pong(Ping {
                sequence: 0,
                payload: vec![0; 4]
            }),
            &mut ledger_a
        )
        .unwrap_err()
        .to_string(),
        "invalid pong: sequence 0 does not echo ping 0 of this session"
    );
}

#[test]
fn ledger_json_golden() {
    let mut ledger = DisclosureLedger::new(sid(0xab), Role::Responder, Mode::Validate, "insurer");
    ledger.record_received(MessageKind::Hello, 100);
    ledger.record_learned(Disclosure::SetSize {
        key: "my_number".into(),
        size: 1000,
    });
    ledger.record_revealed(Disclosure::Clks { count: 12 });
    let json: serde_json::Value = serde_json::from_str(&ledger.to_json().unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "session_id": "abababababababababababababababab",
            "role": "responder",
            "mode": "validate",
            "peer": "insurer",
            "sent": {"total": {"messages": 0, "bytes": 0}, "by_kind": {}},
            "received": {"total": {"messages": 1, "bytes": 100},
                         "by_kind": {"hello": {"messages": 1, "bytes": 100}}},
            "disclosures": [
                {"learned_by": "responder", "what": "set_size", "key": "my_number", "size": 1000},
                {"learned_by": "initiator", "what": "clks", "count": 12}
            ]
        })
    );
    assert_eq!(
        DisclosureLedger::from_json(&ledger.to_json().unwrap()).unwrap(),
        ledger
    );
}

/// The per-pair disclosures, kept compactly, read and write as the two entries they stand
/// for: the same JSON as `record_learned`/`record_revealed` of those entries would give.
#[test]
fn compact_pairs_are_the_entries_they_stand_for() {
    let link = PairName::Link {
        id: [0xa5; 32],
        holder: 1,
    };
    let candidate = PairName::Candidate { record: 7, k: 2 };
    assert_eq!(link.to_string(), format!("{}#1", "a5".repeat(32)));
    assert_eq!(candidate.to_string(), "candidate 7#2");

    let mut compact = DisclosureLedger::new(sid(1), Role::Initiator, Mode::Validate, "registry");
    let mut whole = compact.clone();
    let pairs: [(PairName, bool, Vec<u32>, Vec<u32>); 5] = [
        (link, true, vec![8, 0, 16], vec![4, 4, 0]),
        (candidate, false, vec![1, 2, 3], vec![3, 2, 1]),
        // Does not fit two bytes, then another width: both kept as whole entries, in order.
        (link, true, vec![70_000, 1, 1], vec![1, 1, 1]),
        (candidate, true, vec![1, 1], vec![1, 1]),
        (link, false, vec![2, 2, 2], vec![2, 2, 2]),
    ];
    compact.record_learned(Disclosure::SetSize {
        key: "id".into(),
        size: 3,
    });
    whole.record_learned(Disclosure::SetSize {
        key: "id".into(),
        size: 3,
    });
    for (name, comparing, answerer, querier) in &pairs {
        compact.record_pair(*name, *comparing, answerer, querier);
        let shared = Disclosure::SharedTokenCounts {
            pair: name.to_string(),
            peer_padded: answerer.clone(),
        };
        let padded = Disclosure::PaddedTokenCounts {
            pair: name.to_string(),
            padded: querier.clone(),
        };
        if *comparing {
            whole.record_learned(shared);
            whole.record_revealed(padded);
        } else {
            whole.record_revealed(shared);
            whole.record_learned(padded);
        }
    }
    compact.record_revealed(Disclosure::AgreementScores { pairs: 5 });
    whole.record_revealed(Disclosure::AgreementScores { pairs: 5 });

    assert_eq!(compact.disclosure_count(), 12);
    assert_eq!(compact.to_json().unwrap(), whole.to_json().unwrap());
    assert_eq!(
        compact.disclosures().collect::<Vec<_>>(),
        whole.disclosures().collect::<Vec<_>>()
    );
    assert_eq!(compact, whole);
    let json: serde_json::Value = serde_json::from_str(&compact.to_json().unwrap()).unwrap();
    assert_eq!(
        json["disclosures"][1],
        serde_json::json!({"learned_by": "initiator", "what": "shared_token_counts",
                           "pair": link.to_string(), "peer_padded": [8, 0, 16]})
    );
    assert_eq!(
        json["disclosures"][4],
        serde_json::json!({"learned_by": "initiator", "what": "padded_token_counts",
                           "pair": "candidate 7#2", "padded": [3, 2, 1]})
    );
    assert_eq!(
        DisclosureLedger::from_json(&compact.to_json().unwrap()).unwrap(),
        compact
    );
    // A ledger that differs in one padded size is not equal.
    let mut other = DisclosureLedger::new(sid(1), Role::Initiator, Mode::Validate, "registry");
    other.record_learned(Disclosure::SetSize {
        key: "id".into(),
        size: 3,
    });
    for (n, (name, comparing, answerer, querier)) in pairs.iter().enumerate() {
        let mut answerer = answerer.clone();
        if n == 1 {
            answerer[2] = 4;
        }
        other.record_pair(*name, *comparing, &answerer, querier);
    }
    other.record_revealed(Disclosure::AgreementScores { pairs: 5 });
    assert_ne!(other, compact);
}

proptest! {
    /// Any sequence of pairs and other disclosures: the compact ledger says what the entries
    /// say, in the same order.
    #[test]
    fn compact_ledger_matches_entries(
        steps in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), any::<[u8; 2]>(), 1usize..4,
             proptest::collection::vec(0u32..70_000, 6)),
            0..40,
        )
    ) {
        let mut compact = DisclosureLedger::new(sid(2), Role::Responder, Mode::Fuzzy, "p");
        let mut whole = compact.clone();
        for (pair, comparing, id, width, sizes) in steps {
            if !pair {
                let d = Disclosure::MatchedRecords { key: "k".into(), count: u64::from(id[0]) };
                compact.record_revealed(d.clone());
                whole.record_revealed(d);
                continue;
            }
            let name = if id[1] % 2 == 0 {
                PairName::Link { id: [id[0]; 32], holder: u16::from(id[1]) }
            } else {
                PairName::Candidate { record: u32::from(id[0]), k: u32::from(id[1]) }
            };
            let (answerer, querier) = (&sizes[..width], &sizes[3..3 + width]);
            compact.record_pair(name, comparing, answerer, querier);
            let shared = Disclosure::SharedTokenCounts {
                pair: name.to_string(),
                peer_padded: answerer.to_vec(),
            };
            let padded = Disclosure::PaddedTokenCounts { pair: name.to_string(), padded: querier.to_vec() };
            if comparing {
                whole.record_learned(shared);
                whole.record_revealed(padded);
            } else {
                whole.record_revealed(shared);
                whole.record_learned(padded);
            }
        }
        prop_assert_eq!(compact.disclosure_count(), whole.disclosure_count());
        prop_assert_eq!(compact.to_json().unwrap(), whole.to_json().unwrap());
        prop_assert_eq!(&compact, &whole);
    }
}

#[test]
fn session_id_text() {
    let id: SessionId = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
    assert_eq!(id.as_bytes()[15], 15);
    assert_eq!(id.to_string(), "000102030405060708090a0b0c0d0e0f");
    assert_eq!(
        "xyz".parse::<SessionId>().unwrap_err().to_string(),
        "invalid session id: expected 32 hex digits, got 3 characters"
    );
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(5);
    assert_ne!(SessionId::random(&mut rng), SessionId::random(&mut rng));
}

proptest! {
    #[test]
    fn decode_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&frame);
    }

    #[test]
    fn every_truncated_hello_is_refused(cut in 0usize..200) {
        let frame = hello_frame();
        let cut = cut.min(frame.len() - 1);
        prop_assert!(Message::decode(&frame[..cut]).is_err());
    }

    #[test]
    fn ping_round_trips(sequence: u32, payload in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let msg = Message::Ping(Ping { sequence, payload });
        prop_assert_eq!(Message::decode(&msg.encode().unwrap()).unwrap(), msg);
    }
}

fn arbitrary_offer() -> impl Strategy<Value = SessionOffer> {
    let field = prop_oneof![
        Just(("name", "text")),
        Just(("dob", "date")),
        Just(("sex", "sex")),
        Just(("address", "text")),
        Just(("dob", "text"))
    ];
    let fields = proptest::collection::vec(field, 1..4);
    let mode = proptest::sample::select(Mode::ALL.to_vec());
    let bits = prop_oneof![Just("1024"), Just("2048")];
    (mode, fields, bits).prop_map(|(mode, fields, bits)| {
        let mut unique: Vec<(&str, &str)> = Vec::new();
        for f in fields {
            if !unique.iter().any(|u| u.0 == f.0) {
                unique.push(f);
            }
        }
        offer(mode, &unique, &[("filter_bits", bits)])
    })
}

proptest! {
    /// Both sides always agree on whether the session goes on, and on the kind of difference.
    #[test]
    fn both_sides_agree(a in arbitrary_offer(), b in arbitrary_offer(), same_key: bool) {
        let k2: &[u8] = if same_key { b"shared secret" } else { b"other secret" };
        let (ours, theirs) = run(a.clone(), b.clone(), b"shared secret", k2);
        let kind = |s: &str| s.split(':').next().unwrap_or_default().to_owned();
        prop_assert_eq!(ours.starts_with("ok"), theirs.starts_with("ok"));
        prop_assert_eq!(ours.starts_with("ok"), a == b && same_key);
        if !ours.starts_with("ok") {
            prop_assert_eq!(kind(&ours), kind(&theirs));
        }
    }
}

proptest! {
    /// Hostile edits of a valid hello reach deep into the decoder and the comparison: each is
    /// refused or accepted cleanly, never a panic.
    #[test]
    fn mutated_hellos_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut frame = hello_frame();
        for (at, byte) in edits {
            let at = at % frame.len();
            frame[at] = byte;
        }
        if let Ok(message) = Message::decode(&frame) {
            let answer = ResponderHandshake::new(offer(Mode::Exact, FIELDS, PARAMS), b"k").handle(message);
            let _ = answer.result;
        }
    }
}
