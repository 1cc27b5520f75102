//! What crosses the wire, checked against the wire itself: every mode over real loopback mutual
//! TLS with `[output] transcript = true`, then
//!
//! - the revealing side's records are encoded with the schema and the key, as the comparing
//!   side (which holds both) could, in the record-level layout and the `per-field` layout: no
//!   CLK, no per-field filter and no 8-byte window of one appears anywhere in the bytes the
//!   comparing side received, in every mode but `clk-exchange`; in `clk-exchange` every CLK
//!   does (so the search finds what is there);
//! - no PSI input of either side (match-key values, field token digests, fuzzy's band tokens
//!   and exact-stage tokens, all keyed or decodable by the key holder) appears in what the
//!   other side received, in any mode: only blinded points and counts cross;
//! - each side's ledger agrees with its transcript, kind by kind, message and byte counts;
//! - `clk-exchange` runs only when both configs opt in;
//! - hostile grouped-PSI messages end both sides with a clear error and no output.

use std::collections::{BTreeSet, HashSet};

use blindlink_cli::commands::party::input::read_party_records;
use blindlink_cli::commands::party::{PartyCommand, PartyConfig, load_party, session};
use blindlink_encoding::{ClkEncoder, LinkageSecret, SchemaDocument};
use blindlink_protocol::{
    Direction, DisclosureLedger, MAX_MODE_CHUNK_BYTES, ModeConfig, Parameters, Traffic,
    TrafficCount, Transcript, fuzzy_blocking_tokens, fuzzy_exact_tokens,
};

use crate::peers::{Peers, failed, linked, quick, without_port};

/// Persons of the synthetic populations: enough for every mode to link and compare something.
const PERSONS: u64 = 200;

fn registry_insurer(mode: &str) -> Peers {
    Peers::new(false, PERSONS, mode)
}

fn hospitals(mode: &str) -> Peers {
    Peers::new(true, PERSONS, mode)
}

/// Both parties write `transcript.bin`; for `clk-exchange` both also opt in.
fn with_transcripts(peers: &Peers, mode: &str) {
    for party in [peers.server, peers.client] {
        peers.edit(party, |t| {
            let t = t.replace("# transcript = true", "transcript = true");
            if mode == "clk-exchange" { opt_in(t) } else { t }
        });
    }
}

fn opt_in(config: String) -> String {
    assert!(config.contains("# reveal_decodable_encodings = true"));
    config.replace(
        "# reveal_decodable_encodings = true",
        "reveal_decodable_encodings = true",
    )
}

fn transcript(peers: &Peers, party: &str) -> Transcript {
    let path = peers.path(&format!("out/{party}/transcript.bin"));
    Transcript::from_bytes(&std::fs::read(&path).unwrap()).unwrap()
}

fn ledger(peers: &Peers, party: &str) -> DisclosureLedger {
    let text = std::fs::read_to_string(peers.path(&format!("out/{party}/ledger.json"))).unwrap();
    DisclosureLedger::from_json(&text).unwrap()
}

/// A Bloom-filter encoding of one of the revealing side's records.
struct Encoding {
    what: String,
    bytes: Vec<u8>,
}

/// The two layouts of each example schema: `schema.toml` is `per-field` (five 512-bit
/// filters), `clk-schema.toml` one 1024-bit record-level filter; each is also rewritten into
/// the other layout, so every mode is checked against both kinds of encoding.
fn schema_variants(peers: &Peers) -> Vec<(String, String, bool)> {
    let per_field = std::fs::read_to_string(peers.path("schema.toml")).unwrap();
    let record = std::fs::read_to_string(peers.path("clk-schema.toml")).unwrap();
    let per_field_as_record = per_field
        .replace(
            "bits = 2560\nlayout = \"per-field\"",
            "bits = 1024\nlayout = \"clk\"",
        )
        .replace("bits = 512\n", "");
    let record_as_per_field = record
        .replace(
            "bits = 1024\nlayout = \"clk\"",
            "bits = 2560\nlayout = \"per-field\"",
        )
        .replace("[[field]]\n", "[[field]]\nbits = 512\n");
    vec![
        ("schema.toml".into(), per_field, true),
        ("schema.toml as clk".into(), per_field_as_record, false),
        ("clk-schema.toml".into(), record, false),
        (
            "clk-schema.toml as per-field".into(),
            record_as_per_field,
            true,
        ),
    ]
}

/// Every record-level CLK and every per-field filter of `party`'s records, under every schema
/// variant, encoded with the party's own key and column mapping.
fn encodings(peers: &Peers, party: &str) -> Vec<Encoding> {
    let config = PartyConfig::load(&peers.config(party), PartyCommand::Serve).unwrap();
    let secret = std::fs::read(&config.key_file).unwrap();
    let mut out = Vec::new();
    for (name, text, per_field) in schema_variants(peers) {
        let doc = SchemaDocument::parse(&text).unwrap();
        let encoder =
            ClkEncoder::new(&doc, &LinkageSecret::from_bytes(secret.clone()).unwrap()).unwrap();
        let records = read_party_records(
            config.input.csv().unwrap(),
            &config.id_column,
            &[],
            &doc,
            &config.schema_columns,
            &config.combined_columns,
            Some(&encoder),
            None,
            Default::default(),
        )
        .unwrap();
        for (i, id) in records.ids.iter().enumerate() {
            let clk = records.clk(i);
            out.push(Encoding {
                what: format!("{name} CLK of {id}"),
                bytes: clk.to_vec(),
            });
            if per_field {
                for (f, filter) in clk.chunks(64).enumerate() {
                    out.push(Encoding {
                        what: format!("{name} filter {f} of {id}"),
                        bytes: filter.to_vec(),
                    });
                }
            }
        }
    }
    out
}

/// An 8-byte window is evidence only when it could not plausibly occur in a length or a count:
/// at least 12 of its 64 bits set (a sparse filter's stretches of zeros are not).
fn distinctive(window: &[u8]) -> bool {
    window.iter().map(|b| b.count_ones()).sum::<u32>() >= 12
}

fn received_bytes(transcript: &Transcript) -> Vec<&[u8]> {
    transcript
        .entries()
        .iter()
        .filter(|e| e.direction == Direction::Received)
        .map(|e| e.bytes.as_slice())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What of `encodings` appears in `received`: (whole encodings found, distinctive windows
/// checked, windows found, the first few found).
fn search(encodings: &[Encoding], received: &[&[u8]]) -> (usize, usize, usize, Vec<String>) {
    let windows: HashSet<&[u8]> = received.iter().flat_map(|m| m.windows(8)).collect();
    let (mut whole, mut checked, mut found) = (0, 0, 0);
    let mut examples = Vec::new();
    for e in encodings {
        if received.iter().any(|m| contains(m, &e.bytes)) {
            whole += 1;
        }
        for w in e.bytes.windows(8).filter(|w| distinctive(w)) {
            checked += 1;
            if windows.contains(w) {
                found += 1;
                if examples.len() < 3 {
                    examples.push(e.what.clone());
                }
            }
        }
    }
    (whole, checked, found, examples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_encoding_or_psi_input_reaches_the_peer_but_clks_in_clk_exchange() {
    for (mode, psi_input_kinds) in [
        ("cardinality", &["match key"][..]),
        ("exact", &["match key"]),
        ("validate", &["field token", "match key"]),
        ("fuzzy", &["band token", "exact-stage token", "field token"]),
        ("clk-exchange", &[]),
    ] {
        let peers = if matches!(mode, "fuzzy" | "clk-exchange") {
            hospitals(mode)
        } else {
            registry_insurer(mode)
        };
        with_transcripts(&peers, mode);
        let (server, client) = linked(&peers).await;
        assert!(
            client.outcome.counts.linked + client.outcome.counts.suspected_wrong_person > 0
                || mode == "cardinality",
            "{mode}: nothing linked"
        );
        let encodings = encodings(&peers, peers.server);
        let comparing = transcript(&peers, peers.client);
        let received = received_bytes(&comparing);
        let (whole, checked, found, examples) = search(&encodings, &received);
        assert!(
            checked > 100 * PERSONS as usize,
            "{mode}: only {checked} windows checked"
        );
        if mode == "clk-exchange" {
            // Every CLK of the schema in use crossed, as the mode says.
            let sent: Vec<&Encoding> = encodings
                .iter()
                .filter(|e| e.what.starts_with("clk-schema.toml CLK"))
                .collect();
            let crossed = sent
                .iter()
                .filter(|e| received.iter().any(|m| contains(m, &e.bytes)))
                .count();
            assert_eq!(crossed, server.outcome.rows.len(), "{mode}");
            assert!(found > 0, "{mode}: the window search found nothing");
        } else {
            assert_eq!(
                (whole, found),
                (0, 0),
                "{mode}: encodings of the revealing side reached the comparing side, e.g. {examples:?}"
            );
        }
        assert_no_psi_input_crossed(&peers, mode, psi_input_kinds);
    }
}

/// Every token of `party`'s records that a PSI of the mode in use takes as input, as `party`
/// holds it before anything is hashed to the group: the match-key values, each compared
/// field's token digests, and in `fuzzy` the MinHash band tokens and the exact stage's
/// whole-record tokens. The peer holds the key that made them, so any of them on the wire
/// would be as decodable as a filter. Tokens shorter than a search window are left out.
fn psi_inputs(peers: &Peers, party: &str) -> (Vec<Encoding>, BTreeSet<&'static str>) {
    let command = if party == peers.server {
        PartyCommand::Serve
    } else {
        PartyCommand::Link
    };
    let config = PartyConfig::load(&peers.config(party), command).unwrap();
    let loaded = load_party(config).unwrap();
    let prepared = session::prepare(&loaded).unwrap();
    let data = &prepared.data;
    let mut out = Vec::new();
    let mut kinds = BTreeSet::new();
    let mut push = |kind: &'static str, id: &str, bytes: &[u8]| {
        if bytes.len() >= 8 {
            kinds.insert(kind);
            out.push(Encoding {
                what: format!("{kind} of {id}"),
                bytes: bytes.to_vec(),
            });
        }
    };
    for r in data.records() {
        for key in r.keys.iter().flatten() {
            push("match key", &r.id, key);
        }
        for token in r.fields.iter().flatten() {
            push("field token", &r.id, token);
        }
    }
    if let ModeConfig::Fuzzy(fuzzy) = &prepared.mode_config {
        let bands = fuzzy_blocking_tokens(fuzzy, data).unwrap();
        let exact = fuzzy_exact_tokens(fuzzy, data).unwrap();
        for (r, (bands, exact)) in data.records().zip(bands.iter().zip(&exact)) {
            for band in bands {
                push("band token", &r.id, band);
            }
            if let Some(token) = exact {
                push("exact-stage token", &r.id, token);
            }
        }
    }
    (out, kinds)
}

/// No PSI input of either side (see [`psi_inputs`]; `expected` are the kinds the mode takes)
/// appears, whole or as an 8-byte window, in what the other side received.
fn assert_no_psi_input_crossed(peers: &Peers, mode: &str, expected: &[&str]) {
    for (owner, receiver) in [(peers.server, peers.client), (peers.client, peers.server)] {
        let (inputs, kinds) = psi_inputs(peers, owner);
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            expected,
            "{mode}: the kinds of PSI input of {owner}"
        );
        let theirs = transcript(peers, receiver);
        let received = received_bytes(&theirs);
        let (whole, checked, found, examples) = search(&inputs, &received);
        assert!(
            checked >= 5 * inputs.len(),
            "{mode}: only {checked} windows checked of {} inputs",
            inputs.len()
        );
        assert_eq!(
            (whole, found),
            (0, 0),
            "{mode}: PSI inputs of {owner} reached {receiver}, e.g. {examples:?}"
        );
    }
}

/// The traffic a transcript implies: a mode message of `n` bytes travels as
/// `max(1, ceil(n / MAX_MODE_CHUNK_BYTES))` chunks of 8 bytes of framing each (kind, round,
/// last flag, length) plus its payload; any other message is one frame, its kind byte and body.
fn traffic_of(transcript: &Transcript, direction: Direction) -> Traffic {
    let mut traffic = Traffic::default();
    for e in transcript
        .entries()
        .iter()
        .filter(|e| e.direction == direction)
    {
        let n = e.bytes.len() as u64;
        let (messages, bytes) = if e.kind.is_mode() {
            let chunks = e.bytes.len().div_ceil(MAX_MODE_CHUNK_BYTES).max(1) as u64;
            (chunks, n + 8 * chunks)
        } else {
            (1, n + 1)
        };
        let add = |c: &mut TrafficCount| {
            c.messages += messages;
            c.bytes += bytes;
        };
        add(&mut traffic.total);
        add(traffic.by_kind.entry(e.kind.name().to_owned()).or_default());
    }
    traffic
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_agree_with_transcripts() {
    for mode in ["cardinality", "exact", "validate", "fuzzy", "clk-exchange"] {
        let peers = if matches!(mode, "fuzzy" | "clk-exchange") {
            hospitals(mode)
        } else {
            registry_insurer(mode)
        };
        with_transcripts(&peers, mode);
        let (server, client) = linked(&peers).await;
        for (party, done) in [(peers.server, &server), (peers.client, &client)] {
            let mut files = peers.outputs(party);
            files.retain(|f| f != "rejects.csv");
            let mut expected = vec!["ledger.json", "links.csv", "report.txt", "transcript.bin"];
            if mode == "validate" && party == peers.client {
                // The comparing side's Fellegi–Sunter model and explanations.
                expected.extend(["explanations.csv", "model.json"]);
                expected.sort_unstable();
            }
            assert_eq!(files, expected, "{mode} {party}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let path = peers.path(&format!("out/{party}/transcript.bin"));
                let mode_bits = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(
                    mode_bits, 0o600,
                    "{mode} {party}: transcript.bin permissions"
                );
            }
            let ledger = ledger(&peers, party);
            assert_eq!(ledger, done.ledger, "{mode} {party}: ledger.json");
            let transcript = transcript(&peers, party);
            assert_eq!(transcript.session_id(), ledger.session_id, "{mode} {party}");
            assert_eq!(transcript.role(), ledger.role, "{mode} {party}");
            assert_eq!(
                traffic_of(&transcript, Direction::Sent),
                ledger.sent,
                "{mode} {party}: sent"
            );
            assert_eq!(
                traffic_of(&transcript, Direction::Received),
                ledger.received,
                "{mode} {party}: received"
            );
        }
        // And the two transcripts mirror each other: what one sent the other received.
        let (a, b) = (
            transcript(&peers, peers.server),
            transcript(&peers, peers.client),
        );
        let flip = |t: &Transcript, d: Direction| -> Vec<(String, u16, Vec<u8>)> {
            t.entries()
                .iter()
                .filter(|e| e.direction == d)
                .map(|e| (e.kind.name().to_owned(), e.round, e.bytes.clone()))
                .collect()
        };
        assert!(
            flip(&a, Direction::Sent) == flip(&b, Direction::Received),
            "{mode}: the server's sent messages are not the client's received ones"
        );
        assert!(
            flip(&b, Direction::Sent) == flip(&a, Direction::Received),
            "{mode}: the client's sent messages are not the server's received ones"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clk_exchange_needs_both_configs_to_opt_in() {
    let peers = hospitals("clk-exchange");
    let refusal = "invalid clk-exchange configuration: [linkage] reveal_decodable_encodings \
                   is not set: clk-exchange sends every CLK to the comparing side, which holds \
                   the linkage key and can decode them; set [linkage] \
                   reveal_decodable_encodings = true in both party configs to accept that";
    // Neither side has opted in: each refuses on its own, before it listens or connects.
    for (party, command) in [
        ("hospital-a", PartyCommand::Serve),
        ("hospital-b", PartyCommand::Link),
    ] {
        let config = PartyConfig::load(&peers.config(party), command).unwrap();
        let party_data = load_party(config).unwrap();
        let err = session::prepare(&party_data).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: {refusal}", peers.config(party).display())
        );
    }
    for (command, party) in [("serve", "hospital-a"), ("link", "hospital-b")] {
        let config = peers.config(party);
        let got =
            crate::support::blindlink(&[command, "--quiet", "--config", config.to_str().unwrap()])
                .unwrap_err();
        assert_eq!(got, format!("{}: {refusal}", config.display()), "{command}");
        assert_eq!(peers.outputs(party), Vec::<String>::new(), "{command}");
    }

    // Only the server opts in: the client still refuses locally.
    peers.edit("hospital-a", opt_in);
    let config = PartyConfig::load(&peers.config("hospital-b"), PartyCommand::Link).unwrap();
    let client = load_party(config).unwrap();
    assert!(session::prepare(&client).is_err());

    // A client that claims in the handshake not to have opted in (an older or a modified
    // peer): the opt-in is a committed parameter, so both sides stop at the handshake.
    peers.edit("hospital-b", opt_in);
    let (party, mut prepared) = peers.load("hospital-b", PartyCommand::Link);
    let entries: Vec<(String, String)> = prepared
        .offer
        .parameters
        .entries()
        .iter()
        .map(|(k, v)| {
            if k == "clk_exchange.reveal_decodable_encodings" {
                (k.clone(), "false".to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_ne!(entries, prepared.offer.parameters.entries());
    prepared.offer.parameters = Parameters::new(entries).unwrap();
    let (server, client) = failed(&peers, quick(), &(party, prepared)).await;
    let mismatch = "parameter digest differs: parameter 'clk_exchange.reveal_decodable_encodings'";
    assert_eq!(
        (server, without_port(&client)),
        (
            format!(
                "session with hospital-b failed, nothing written: {mismatch} is 'true' on this \
                 side and 'false' on the peer"
            ),
            format!(
                "link with hospital-a at ADDR failed, nothing written: {mismatch} is 'false' on \
                 this side and 'true' on the peer"
            ),
        )
    );

    // Both opt in: it runs, and both reports say the CLKs can be decoded.
    let (_, client) = linked(&peers).await;
    assert!(client.outcome.counts.linked > 0);
    for (party, side) in [
        ("hospital-a", "the peer received this side's CLKs"),
        ("hospital-b", "this side received the peer's CLKs"),
    ] {
        let report =
            std::fs::read_to_string(peers.path(&format!("out/{party}/report.txt"))).unwrap();
        assert!(
            report.contains(&format!(
                "warning: clk-exchange: {side} and holds the linkage key, so it can decode them"
            )),
            "{party}: {report}"
        );
    }
}

#[test]
fn the_search_finds_a_planted_window_and_ignores_sparse_ones() {
    let clk: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37) | 0x11).collect();
    let encodings = [Encoding {
        what: "planted".into(),
        bytes: clk.clone(),
    }];
    let mut message = vec![0u8; 100];
    message.extend_from_slice(&clk[20..28]);
    assert_eq!(search(&encodings, &[message.as_slice()]).2, 1);
    assert_eq!(search(&encodings, &[&message[..107]]).2, 0);
    let sparse = [Encoding {
        what: "sparse".into(),
        bytes: vec![0, 0, 1, 0, 0, 0, 0x80, 0, 0, 0],
    }];
    assert_eq!(search(&sparse, &[&[0, 0, 1, 0, 0, 0, 0x80, 0][..]]).1, 0);
}
