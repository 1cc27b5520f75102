//! Writes the seed inputs of every fuzz target into `fuzz/seeds/<target>/`: honest messages
//! and transcripts recorded from in-process runs, the repository's example schemas and CLK
//! files made with the round trip. Deterministic: running it again rewrites the same bytes.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use blindlink_encoding::format::{ClkFormat, ClkSet, read_clks, write_clks};
use blindlink_encoding::normalise::NormaliseStep;
use blindlink_fuzz::{
    DRIVER_SETUPS, SECRET, SESSION, driver, driver_setup, frames, handshake_offer, push_frame,
};
use blindlink_protocol::{
    DisclosureLedger, InitiatorHandshake, Message, MessageKind, ModeChunk, Ping,
    ResponderHandshake, Role, SessionDriver, SessionId,
};
use blindlink_psi::{
    CardinalityInitiator, CardinalityResponder, FalsePositiveRate, MatchKeyName, MutualInitiator,
    MutualResponder, SetEncoding,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("seeds");
    clk_file(&seeds.join("clk_file"), root);
    psi_wire(&seeds.join("psi_wire"));
    protocol_frames(&seeds.join("protocol_frames"));
    normalise(&seeds.join("normalise"));
    schema(&seeds.join("schema"), root);
    mode_driver(&seeds.join("mode_driver"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the seed directory");
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn clk_file(dir: &Path, root: &Path) {
    write(dir, "json-two", br#"{"clks": ["8A==", "Dw=="]}"#);
    // clkhash's output for a data set with rejected rows (`null`s, which read_clks rejects).
    let json =
        std::fs::read(root.join("../tests/data/clkhash/double_singular_folded.expected.json"))
            .expect("read a clkhash vector");
    write(dir, "json-clkhash-nulls", &json);
    let mut set = ClkSet::new(12).expect("valid length");
    set.push(&[0xa5, 0xf0]).expect("two bytes");
    set.push(&[0x01, 0x20]).expect("two bytes");
    set.set_schema_digest([7; 32]);
    let mut binary = Vec::new();
    write_clks(&set, ClkFormat::Binary, &mut binary).expect("write to a vector");
    assert_eq!(read_clks(binary.as_slice()).expect("reads back"), set);
    write(dir, "binary-12-bits", &binary);
    // 1024-bit CLKs, in both formats.
    let mut set = ClkSet::new(1024).expect("valid length");
    for i in 0..3u8 {
        let clk: Vec<u8> = (0..128u8).map(|j| j.wrapping_mul(29) ^ i).collect();
        set.push(&clk).expect("128 bytes");
    }
    for (name, format) in [
        ("json-1024", ClkFormat::Json),
        ("binary-1024", ClkFormat::Binary),
    ] {
        let mut bytes = Vec::new();
        write_clks(&set, format, &mut bytes).expect("write to a vector");
        assert_eq!(read_clks(bytes.as_slice()).expect("reads back"), set);
        write(dir, name, &bytes);
    }
}

fn psi_wire(dir: &Path) {
    let key = MatchKeyName::new("fuzz").expect("valid key");
    let rng = |seed: u8| ChaCha20Rng::from_seed([seed; 32]);
    let ours = ["a", "b", "c"];
    let theirs = ["c", "d", "a", "e"];
    let (initiator, request) = MutualInitiator::start(&key, &ours, &mut rng(1)).expect("start");
    let responder = MutualResponder::start(&key, &theirs, &mut rng(2)).expect("start");
    let (_, reply) = responder
        .handle_blinded_set(&request)
        .expect("honest request");
    let (_, reblinded) = initiator.handle_reply(&reply).expect("honest reply");
    write(dir, "blinded-set", &request.encode());
    write(dir, "mutual-reply", &reply.encode());
    write(dir, "reblinded-set", &reblinded.encode());
    let rate = FalsePositiveRate::new(0.01).expect("valid rate");
    for (name, encoding) in [
        ("raw", SetEncoding::Raw),
        ("bloom", SetEncoding::Bloom(rate)),
    ] {
        let (_, request) = CardinalityInitiator::start(&key, &ours, &mut rng(3)).expect("start");
        let responder = CardinalityResponder::new(&key, &theirs, encoding).expect("new");
        let reply = responder
            .handle_blinded_set(&request, &mut rng(4))
            .expect("honest");
        write(dir, &format!("cardinality-reply-{name}"), &reply.encode());
    }
}

fn protocol_frames(dir: &Path) {
    let (_, hello) = InitiatorHandshake::start(handshake_offer(), SECRET, SESSION);
    let answer = ResponderHandshake::new(handshake_offer(), SECRET).handle(hello.clone());
    assert!(answer.result.is_ok(), "the honest handshake succeeds");
    let reply = answer.reply.expect("the responder answers");
    let ping = Ping {
        sequence: 0,
        payload: b"ping payload".to_vec(),
    };
    let messages = [
        ("initiator-hello", hello),
        ("responder-hello", reply),
        ("abort", Message::abort("schema differs: field 'name'")),
        ("done", Message::Done),
        ("ping", Message::Ping(ping.clone())),
        ("pong", Message::Pong(ping)),
        (
            "mode-chunk",
            Message::Mode(ModeChunk {
                kind: MessageKind::IntersectionSize,
                round: 0,
                last: true,
                payload: 3u64.to_be_bytes().to_vec(),
            }),
        ),
        (
            "pair-plan-chunk",
            Message::Mode(ModeChunk {
                kind: MessageKind::PairPlan,
                round: 0,
                last: false,
                payload: vec![0, 0, 0, 2, 0, 1, 0, 2],
            }),
        ),
    ];
    for (name, message) in messages {
        write(dir, name, &message.encode().expect("encodes"));
    }
}

fn normalise(dir: &Path) {
    let index = |name: &str| {
        NormaliseStep::ALL
            .iter()
            .position(|s| s.name() == name)
            .expect("a known step") as u8
    };
    let cases: [(&str, &[&str], &str); 8] = [
        (
            "name",
            &["nfkc", "katakana", "strip-whitespace", "itaiji"],
            "ﾀｶﾊｼ たろう 髙橋",
        ),
        (
            "kana",
            &[
                "halfwidth-kana",
                "long-vowel-fold",
                "small-kana-fold",
                "vu-fold",
            ],
            "ｳﾞｨｰｯｸ",
        ),
        ("date-era", &["date"], "S60.4.3"),
        ("date-dmy", &["nfkc", "date-dmy"], "３/４/1985"),
        ("sex", &["sex"], "female"),
        ("my-number", &["my-number"], "1234 5678 9018"),
        (
            "address",
            &["nfkc", "drop-postcode", "drop-prefecture", "jp-address"],
            "〒100-0001 東京都千代田区千代田一丁目1番1号",
        ),
        (
            "casefold",
            &["casefold", "whitespace", "digits-only"],
            " Straße ΣΊΣΥΦΟΣ １２ ",
        ),
    ];
    for (name, steps, value) in cases {
        let mut bytes = vec![steps.len() as u8];
        bytes.extend(steps.iter().map(|s| index(s)));
        bytes.extend_from_slice(value.as_bytes());
        write(dir, name, &bytes);
    }
}

fn schema(dir: &Path, root: &Path) {
    let files = [
        ("native.toml", "../examples/schema.toml"),
        ("clkhash.json", "../examples/clkhash-schema.json"),
        (
            "clkhash-numeric.json",
            "../tests/data/clkhash/numeric_formats.schema.json",
        ),
        (
            "clkhash-blake.json",
            "../tests/data/clkhash/blake_sha512.schema.json",
        ),
    ];
    for (name, path) in files {
        let bytes = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
        write(dir, name, &bytes);
    }
}

/// Runs both drivers of every set-up against each other and records, for each side, the
/// frames it receives: an honest transcript the fuzzer mutates from.
fn mode_driver(dir: &Path) {
    for selector in (0..DRIVER_SETUPS as u8).step_by(2) {
        let (config, initiator_data, _) = driver_setup(selector);
        let (_, responder_data, _) = driver_setup(selector + 1);
        let mut drivers = [
            driver(&config, initiator_data, Role::Initiator),
            driver(&config, responder_data, Role::Responder),
        ];
        let session = SessionId::from_bytes([0; 16]);
        let mut ledgers = [
            DisclosureLedger::new(session, Role::Initiator, config.mode(), "responder"),
            DisclosureLedger::new(session, Role::Responder, config.mode(), "initiator"),
        ];
        let mut transcripts = [vec![selector], vec![selector + 1]];
        let mut queues: [VecDeque<Vec<u8>>; 2] = [VecDeque::new(), VecDeque::new()];
        let mut finished = [false, false];
        for side in 0..2 {
            let step = drivers[side]
                .start(&mut ledgers[side])
                .expect("honest start");
            finished[side] |= step.finished;
            for m in step.send {
                queues[1 - side].push_back(m.encode().expect("encodes"));
            }
        }
        while queues.iter().any(|q| !q.is_empty()) {
            for side in 0..2 {
                while let Some(frame) = queues[side].pop_front() {
                    push_frame(&mut transcripts[side], &frame);
                    if finished[side] {
                        continue;
                    }
                    let message = Message::decode(&frame).expect("decodes");
                    let step = drivers[side]
                        .handle(message, &mut ledgers[side])
                        .unwrap_or_else(|e| panic!("honest {} run fails: {e}", config.mode()));
                    finished[side] |= step.finished;
                    for m in step.send {
                        queues[1 - side].push_back(m.encode().expect("encodes"));
                    }
                }
            }
        }
        assert_eq!(
            finished,
            [true, true],
            "the honest {} run finishes",
            config.mode()
        );
        for (side, transcript) in transcripts.iter().enumerate() {
            let role = if side == 0 { "initiator" } else { "responder" };
            assert!(
                replays(transcript),
                "the {} {role} transcript does not replay to the end",
                config.mode()
            );
            write(dir, &format!("{}-{role}", config.mode()), transcript);
        }
    }
}

/// Whether a fresh driver of the transcript's set-up, fed its frames as the `mode_driver`
/// target feeds them, finishes: the seed then leads the fuzzer through a whole session.
fn replays(transcript: &[u8]) -> bool {
    let (config, party, role) = driver_setup(transcript[0]);
    let mut driver = driver(&config, party, role);
    let mut ledger =
        DisclosureLedger::new(SessionId::from_bytes([0; 16]), role, config.mode(), "peer");
    let mut finished = driver.start(&mut ledger).expect("honest start").finished;
    for frame in frames(&transcript[1..]) {
        if finished {
            break;
        }
        let message = Message::decode(frame).expect("recorded frames decode");
        finished = driver
            .handle(message, &mut ledger)
            .expect("recorded frames are honest")
            .finished;
    }
    finished
}
