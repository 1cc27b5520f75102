//! Hostile grouped-PSI messages over real loopback gRPC with mutual TLS (issue 10, "Bad
//! input"). A malicious peer completes the handshake honestly, runs the honest mode driver and
//! changes one logical message of `validate` or `fuzzy` on its way out: wrong group counts,
//! oversize groups, identity points, invalid point encodings, duplicate points, trailing
//! bytes, pairs that were never linked and candidates that never were. The honest side is a
//! CLI party (`serve` / `link` in-process): it ends with an error naming what was wrong and
//! writes nothing; the malicious side gets a clean gRPC status (or the honest client's
//! abort); an honest `serve` refuses every hostile session and then serves an honest one.
//!
//! In the CLI the initiator (`link`) compares: it sends the pair plan, the grouped query, the
//! pair scores (validate) and the link ids (fuzzy); the responder (`serve`) sends the
//! candidate tokens (fuzzy) and the grouped reply.
//!
//! Counts that depend on the data and on the blocking defaults (links, pairs, candidates,
//! groups) are read from the honest message the malicious peer was about to send, and written
//! into the expected texts as `{L}` (links or pairs of the plan), `{G}` (groups of the query)
//! and `{C}` (candidates), with `+1`/`-1` variants. `{n}` stands for any number: one the
//! malicious side cannot see (the honest querier's count of matched band tokens) or one that
//! follows the session's fresh scalars (the pairs are in link-id order, so the padded size of
//! the first group and the byte length of a message vary from session to session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use blindlink_cli::commands::party::session::PreparedParty;
use blindlink_cli::commands::party::{LoadedParty, PartyCommand, transport_security};
use blindlink_protocol::{
    DisclosureLedger, DriverStep, EstablishedSession, MAX_MINHASH_BANDS, MAX_MODE_CHUNK_BYTES,
    Message, MessageKind, ModeChunk, ModeConfig, ModeDriver, PartyData, ProtocolError, Role,
    SessionDriver, SessionId, new_driver,
};
use blindlink_psi::SizeBuckets;
use blindlink_service::{DriverFactory, Initiator, PeerEndpoint, Responder, ServerConfig};
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use crate::support::{PeerDir, link_to, quick, serve_while};

/// Changes the bytes of one logical message.
type Tamper = fn(Vec<u8>) -> Vec<u8>;

/// One hostile case: what it does, the kind of message it changes, how, the gRPC code of the
/// honest side's refusal, and the honest side's error (a template, see the module docs).
type Case = (
    &'static str,
    MessageKind,
    Tamper,
    &'static str,
    &'static str,
);

/// The first message of each kind a malicious driver sent or received, before any change.
#[derive(Debug, Default)]
struct Seen {
    messages: HashMap<MessageKind, Vec<u8>>,
    complete: Vec<MessageKind>,
}

impl Seen {
    fn add(&mut self, chunk: &ModeChunk) {
        if self.complete.contains(&chunk.kind) {
            return;
        }
        self.messages
            .entry(chunk.kind)
            .or_default()
            .extend_from_slice(&chunk.payload);
        if chunk.last {
            self.complete.push(chunk.kind);
        }
    }

    fn count(&self, kind: MessageKind, little_endian: bool, at: usize) -> i64 {
        let Some(bytes) = self.messages.get(&kind) else {
            return -1;
        };
        let Some(four) = bytes.get(at..at + 4) else {
            return -1;
        };
        let four: [u8; 4] = four.try_into().unwrap();
        i64::from(if little_endian {
            u32::from_le_bytes(four)
        } else {
            u32::from_be_bytes(four)
        })
    }

    /// The template with `{L}`, `{G}`, `{C}` (and their `+1` / `-1`) filled in.
    fn fill(&self, template: &str) -> String {
        use MessageKind::*;
        let values = [
            ("L", self.count(PairPlan, false, 0)),
            ("G", self.count(PsiGroupedQuery, true, 2)),
            ("C", self.count(CandidateTokens, false, 0)),
        ];
        let mut text = template.to_owned();
        for (name, value) in values {
            text = text
                .replace(&format!("{{{name}+1}}"), &(value + 1).to_string())
                .replace(&format!("{{{name}-1}}"), &(value - 1).to_string())
                .replace(&format!("{{{name}}}"), &value.to_string());
        }
        text
    }
}

/// Whether `text` is `template` with every `{n}` standing for a run of digits.
fn matches(text: &str, template: &str) -> bool {
    let mut parts = template.split("{n}");
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in parts {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        match rest[digits..].strip_prefix(part) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// An honest mode driver that changes the first logical message of one kind it sends.
struct Hostile {
    inner: ModeDriver,
    kind: MessageKind,
    tamper: Option<Tamper>,
    seen: Arc<Mutex<Seen>>,
}

impl Hostile {
    fn meddle(&mut self, mut step: DriverStep) -> DriverStep {
        // The inner driver's messages made on demand, taken now so they can be changed.
        step.send
            .extend(std::iter::from_fn(|| self.inner.next_message()));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        for message in &step.send {
            if let Message::Mode(chunk) = message {
                seen.add(chunk);
            }
        }
        let is_target = |m: &Message| matches!(m, Message::Mode(c) if c.kind == self.kind);
        let Some(first) = step.send.iter().position(is_target) else {
            return step;
        };
        let Some(tamper) = self.tamper.take() else {
            return step;
        };
        let mut end = first;
        let mut bytes = Vec::new();
        let mut round = 0;
        while let Some(Message::Mode(chunk)) = step.send.get(end) {
            if chunk.kind != self.kind {
                break;
            }
            bytes.extend_from_slice(&chunk.payload);
            round = chunk.round;
            end += 1;
            if chunk.last {
                break;
            }
        }
        let changed = tamper(bytes);
        let mut chunks: Vec<Message> = changed
            .chunks(MAX_MODE_CHUNK_BYTES)
            .map(|piece| {
                Message::Mode(ModeChunk {
                    kind: self.kind,
                    round,
                    last: false,
                    payload: piece.to_vec(),
                })
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(Message::Mode(ModeChunk {
                kind: self.kind,
                round,
                last: true,
                payload: Vec::new(),
            }));
        }
        if let Some(Message::Mode(last)) = chunks.last_mut() {
            last.last = true;
        }
        let _sent_instead: Vec<Message> = step.send.splice(first..end, chunks).collect();
        step
    }
}

impl SessionDriver for Hostile {
    fn established(&mut self, session: &EstablishedSession) {
        self.inner.established(session);
    }

    fn start(&mut self, ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        let step = self.inner.start(ledger)?;
        Ok(self.meddle(step))
    }

    fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        if let Message::Mode(chunk) = &message {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(chunk);
        }
        let step = self.inner.handle(message, ledger)?;
        Ok(self.meddle(step))
    }
}

// --- Changes to messages ------------------------------------------------------------------

/// A grouped PSI message taken apart: the two header bytes (wire version and kind), per group
/// the sizes of its lists (one list in a query: points; two in a reply: doubly blinded points,
/// then the answerer's 8-byte tags) and the lists' bytes.
struct Grouped {
    head: [u8; 2],
    groups: Vec<Vec<(usize, Vec<u8>)>>,
}

/// Bytes per item of each list of a group of a query (`[32]`) or a reply (`[32, 8]`).
fn item_sizes(head: [u8; 2]) -> &'static [usize] {
    const QUERY: &[usize] = &[32];
    const REPLY: &[usize] = &[32, 8];
    if head[1] == 5 { QUERY } else { REPLY }
}

impl Grouped {
    fn parse(bytes: &[u8]) -> Self {
        let head = [bytes[0], bytes[1]];
        let lists = item_sizes(head);
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let count = u32_at(2) as usize;
        let mut at = 6 + 4 * lists.len() * count;
        let mut groups = Vec::with_capacity(count);
        for group in 0..count {
            let mut parts = Vec::new();
            for (list, item) in lists.iter().enumerate() {
                let n = u32_at(6 + 4 * (lists.len() * group + list)) as usize;
                parts.push((n, bytes[at..at + n * item].to_vec()));
                at += n * item;
            }
            groups.push(parts);
        }
        assert_eq!(
            at,
            bytes.len(),
            "an honest grouped message ends with its last group"
        );
        Self { head, groups }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = self.head.to_vec();
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        for group in &self.groups {
            for (n, _) in group {
                out.extend_from_slice(&(*n as u32).to_le_bytes());
            }
        }
        for group in &self.groups {
            for (_, bytes) in group {
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// The first group whose first list has at least two items.
    fn with_two(&self) -> usize {
        self.groups.iter().position(|g| g[0].0 >= 2).unwrap()
    }
}

fn edit(bytes: Vec<u8>, change: impl FnOnce(&mut Grouped)) -> Vec<u8> {
    let mut grouped = Grouped::parse(&bytes);
    change(&mut grouped);
    grouped.encode()
}

fn trailing_byte(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(0);
    bytes
}

fn last_byte_cut(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.pop();
    bytes
}

fn nothing(_: Vec<u8>) -> Vec<u8> {
    Vec::new()
}

fn wrong_version(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[0] = 9;
    bytes
}

/// A query's kind byte in a reply and the other way round.
fn wrong_psi_kind(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[1] = if bytes[1] == 5 { 6 } else { 5 };
    bytes
}

fn identity_point(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| g.groups[0][0].1[..32].fill(0))
}

fn invalid_point(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| g.groups[0][0].1[..32].fill(0xff))
}

fn duplicate_point(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| {
        let i = g.with_two();
        let points = &mut g.groups[i][0].1;
        let first = points[..32].to_vec();
        points[32..64].copy_from_slice(&first);
    })
}

fn duplicate_tag(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| {
        let i = g.groups.iter().position(|g| g[1].0 >= 2).unwrap();
        let tags = &mut g.groups[i][1].1;
        let first = tags[..8].to_vec();
        tags[8..16].copy_from_slice(&first);
    })
}

/// Only the first group is kept.
fn one_group(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| g.groups.truncate(1))
}

/// A copy of the last group is added: a group for a pair nobody named.
fn extra_group(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| {
        let last = g.groups.last().unwrap().clone();
        g.groups.push(last);
    })
}

/// The first group's size says 100,000 points (the bytes are not there).
fn oversize_group(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[6..10].copy_from_slice(&100_000u32.to_le_bytes());
    bytes
}

/// The group count says 2^32 - 1.
fn huge_group_count(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes
}

/// The first group grows by points of the next groups until its size is no bucket's top.
fn off_bucket_points(bytes: Vec<u8>) -> Vec<u8> {
    let buckets = SizeBuckets::default();
    edit(bytes, |g| {
        let mut from = 1;
        while buckets.is_top(g.groups[0][0].0) {
            let point = g.groups[from][0].1[..32].to_vec();
            g.groups[0][0].0 += 1;
            g.groups[0][0].1.extend_from_slice(&point);
            from += 1;
        }
    })
}

/// The first group of a reply answers one point fewer than it was sent.
fn short_answer(bytes: Vec<u8>) -> Vec<u8> {
    edit(bytes, |g| {
        let points = &mut g.groups[0][0];
        points.0 -= 1;
        points.1.truncate(points.1.len() - 32);
    })
}

/// The answerer's tags of the first group grow until their count is no bucket's top.
fn off_bucket_tags(bytes: Vec<u8>) -> Vec<u8> {
    let buckets = SizeBuckets::default();
    edit(bytes, |g| {
        let tags = &mut g.groups[0][1];
        while buckets.is_top(tags.0) {
            tags.0 += 1;
            tags.1
                .extend_from_slice(&[0xa5, 0x5a, 0, 0, 0, 0, 0, tags.0 as u8]);
        }
    })
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn set_be_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Plans and lists (`u32` count first): the count says one more.
fn count_plus_one(mut bytes: Vec<u8>) -> Vec<u8> {
    let count = be_u32(&bytes, 0);
    set_be_u32(&mut bytes, 0, count + 1);
    bytes
}

/// Plans and lists (`u32` count first): the count says 2^32 - 1.
fn huge_count(mut bytes: Vec<u8>) -> Vec<u8> {
    set_be_u32(&mut bytes, 0, u32::MAX);
    bytes
}

/// Validate's plan: one more link with one holder (a pair that was never linked).
fn plan_unlinked_pair(bytes: Vec<u8>) -> Vec<u8> {
    let mut bytes = count_plus_one(bytes);
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes
}

fn set_first_holders(mut bytes: Vec<u8>, holders: u16) -> Vec<u8> {
    bytes[4..6].copy_from_slice(&holders.to_be_bytes());
    bytes
}

fn plan_zero_holders(bytes: Vec<u8>) -> Vec<u8> {
    set_first_holders(bytes, 0)
}

fn plan_too_many_holders(bytes: Vec<u8>) -> Vec<u8> {
    set_first_holders(bytes, 1025)
}

/// The first linked ID has a second holder the querier never had: the plan names pairs the
/// grouped query then has no groups for.
fn plan_extra_holder(bytes: Vec<u8>) -> Vec<u8> {
    let holders = u16::from_be_bytes([bytes[4], bytes[5]]);
    set_first_holders(bytes, holders + 1)
}

/// Validate's scores: the first score is over 1.
fn score_over_one(mut bytes: Vec<u8>) -> Vec<u8> {
    set_be_u32(&mut bytes, 4, 1_000_001);
    bytes
}

fn flag_two(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[8] = 2;
    bytes
}

/// Fuzzy's plan: the last pair names candidate 2^32 - 1, which was never sent.
fn plan_unknown_candidate(mut bytes: Vec<u8>) -> Vec<u8> {
    let at = bytes.len() - 4;
    set_be_u32(&mut bytes, at, u32::MAX);
    bytes
}

/// Fuzzy's plan: one pair once more (a pair the grouped query then has no groups for).
fn plan_repeat_a_pair(bytes: Vec<u8>) -> Vec<u8> {
    // Repeat a candidate that is in one pair only, right after it (the plan stays ascending
    // and under `fuzzy.max_pairs` = 2), so only the query's group count is wrong. Which
    // candidates have two pairs depends on the session's data, not on this test.
    let entries: Vec<u32> = (0..be_u32(&bytes, 0) as usize)
        .map(|i| be_u32(&bytes, 4 + 4 * i))
        .collect();
    let single = (0..entries.len())
        .rev()
        .find(|&i| {
            (i == 0 || entries[i - 1] != entries[i])
                && entries.get(i + 1).is_none_or(|next| *next != entries[i])
        })
        .expect("a candidate in one pair only");
    let mut bytes = count_plus_one(bytes);
    let at = 4 + 4 * (single + 1);
    let repeated = entries[single].to_be_bytes();
    bytes.splice(at..at, repeated);
    bytes
}

/// Fuzzy's plan: the first pair's candidate comes after the second's.
fn plan_descending(mut bytes: Vec<u8>) -> Vec<u8> {
    let second = be_u32(&bytes, 8);
    set_be_u32(&mut bytes, 4, second + 1);
    bytes
}

/// Candidate tokens: the first candidate holds a token number nobody matched.
fn unmatched_token(mut bytes: Vec<u8>) -> Vec<u8> {
    set_be_u32(&mut bytes, 6, u32::MAX - 1);
    bytes
}

/// Candidate tokens: the first candidate holds no token.
fn no_tokens(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    bytes.drain(6..6 + 4 * n);
    bytes[4..6].copy_from_slice(&0u16.to_be_bytes());
    bytes
}

/// Candidate tokens: the first candidate claims more tokens than there are bands.
fn too_many_tokens(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = u16::try_from(MAX_MINHASH_BANDS + 1).unwrap();
    bytes[4..6].copy_from_slice(&n.to_be_bytes());
    bytes
}

/// Link ids: the first names candidate 2^32 - 1, which was never sent.
fn link_unknown_candidate(mut bytes: Vec<u8>) -> Vec<u8> {
    set_be_u32(&mut bytes, 4, u32::MAX);
    bytes
}

/// Link ids: the first link's score is over 1.
fn link_score_over_one(mut bytes: Vec<u8>) -> Vec<u8> {
    set_be_u32(&mut bytes, 4 + 4 + 32, 1_000_001);
    bytes
}

// --- Running the cases ----------------------------------------------------------------------

/// Runs the client's mode driver with `tamper` applied to its first message of `kind`
/// against `address`; the error it ends with.
async fn hostile_client(
    client: &(LoadedParty, PreparedParty),
    address: std::net::SocketAddr,
    kind: MessageKind,
    tamper: Tamper,
) -> (String, Arc<Mutex<Seen>>) {
    let config = &client.0.config;
    let endpoint = PeerEndpoint {
        address,
        server_name: config.peer.as_ref().unwrap().1.clone(),
        security: transport_security(config).unwrap(),
        limits: quick().limits,
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut driver = Hostile {
        inner: new_driver(
            Role::Initiator,
            &client.1.mode_config,
            (*client.1.data).clone(),
            &mut rng,
        )
        .unwrap(),
        kind,
        tamper: Some(tamper),
        seen: Arc::clone(&seen),
    };
    let mut initiator = Initiator::connect(&endpoint).await.unwrap();
    let ended = tokio::time::timeout(
        Duration::from_secs(20),
        initiator.run_session(
            client.1.offer.clone(),
            &client.0.secret,
            SessionId::random(&mut rng),
            &mut driver,
        ),
    )
    .await
    .expect("the hostile session did not end");
    let error = match ended {
        Ok(_) => "the session completed".to_owned(),
        Err(e) => e.to_string(),
    };
    (error, seen)
}

/// The one check of every case: each text in `got` must be its prefix followed by the case's
/// expected text, filled in from what the malicious side saw. Returns what differs, so a run
/// reports every failing case at once.
fn check(case: &Case, seen: &Mutex<Seen>, got: &[(&str, String)]) -> Option<String> {
    let expected = seen.lock().unwrap().fill(case.4);
    let wrong: Vec<String> = got
        .iter()
        .filter(|(text, prefix)| !matches(text, &format!("{prefix}{expected}")))
        .map(|(text, prefix)| {
            format!(
                "  got  {text:?}\n  want {:?}",
                format!("{prefix}{expected}")
            )
        })
        .collect();
    (!wrong.is_empty()).then(|| format!("case '{}':\n{}", case.0, wrong.join("\n")))
}

/// Every case of a malicious client against an honest `serve`, each on a fresh server; then
/// all of them against one server, which still serves an honest session afterwards.
async fn against_an_honest_server(peers: &PeerDir, cases: &[Case]) {
    let server = peers.load(peers.server, PartyCommand::Serve);
    let client = peers.load(peers.client, PartyCommand::Link);
    let mut mismatches = Vec::new();
    for case in cases {
        let (served, (client_error, seen)) = serve_while(&server, |address| {
            hostile_client(&client, address, case.1, case.2)
        })
        .await;
        let server_error = served.map_or_else(|e| e, |s| format!("{} sessions completed", s.len()));
        mismatches.extend(check(
            case,
            &seen,
            &[
                (
                    &server_error,
                    format!("session with {} failed, nothing written: ", peers.client),
                ),
                (
                    &client_error,
                    format!("peer ended the session ({}): ", case.3),
                ),
            ],
        ));
        assert_eq!(
            peers.outputs(peers.server),
            Vec::<String>::new(),
            "case '{}': the honest server wrote something",
            case.0
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // One server for all of them: it refuses each and then serves the honest client.
    let (served, (again, honest)) = serve_while(&server, |address| async move {
        // The server draws fresh scalars per session, so the link ids and the order of the
        // pairs differ from the first pass: the templates, not the first pass's texts.
        let mut again = Vec::new();
        for case in cases {
            let (status, seen) = hostile_client(&client, address, case.1, case.2).await;
            let prefix = format!("peer ended the session ({}): ", case.3);
            again.extend(check(case, &seen, &[(&status, prefix)]));
        }
        assert_eq!(peers.outputs(peers.server), Vec::<String>::new());
        (again, link_to(&client, address).await)
    })
    .await;
    assert!(again.is_empty(), "{}", again.join("\n"));
    let served = served.unwrap();
    assert_eq!(served.len(), 1, "one completed session: the honest one");
    assert!(honest.unwrap().outcome.counts.linked > 0);
    assert_eq!(
        peers.outputs(peers.server),
        ["ledger.json", "links.csv", "report.txt"]
    );
}

/// Makes the server party's mode driver for each session, hostile in one message.
struct HostileFactory {
    config: ModeConfig,
    data: Arc<PartyData>,
    kind: MessageKind,
    tamper: Tamper,
    seen: Arc<Mutex<Seen>>,
}

impl DriverFactory for HostileFactory {
    fn responder(
        &self,
        _session: &EstablishedSession,
        _peer: &str,
    ) -> Result<Box<dyn SessionDriver>, ProtocolError> {
        let inner = new_driver(
            Role::Responder,
            &self.config,
            (*self.data).clone(),
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(13),
        )?;
        Ok(Box::new(Hostile {
            inner,
            kind: self.kind,
            tamper: Some(self.tamper),
            seen: Arc::clone(&self.seen),
        }))
    }
}

/// Runs an honest `link` against a server whose driver applies `tamper`; returns the honest
/// client's error (port as `ADDR`), the malicious server's report and what it sent.
async fn hostile_server(
    peers: &PeerDir,
    server: &(LoadedParty, PreparedParty),
    client: &(LoadedParty, PreparedParty),
    kind: MessageKind,
    tamper: Tamper,
) -> (String, String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = HostileFactory {
        config: server.1.mode_config.clone(),
        data: Arc::clone(&server.1.data),
        kind,
        tamper,
        seen: Arc::clone(&seen),
    };
    let config = ServerConfig {
        security: transport_security(&server.0.config).unwrap(),
        allowed_peers: server.0.config.allowed_peers.clone(),
        limits: quick().limits,
        offer: server.1.offer.clone(),
        secret: Zeroizing::new(server.0.secret.to_vec()),
    };
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        Responder::new(config, factory, Some(reports_tx)).serve(listener, async {
            let _ = stopped.await;
        }),
    );
    let client_error = match link_to(client, address).await {
        Ok(_) => "the session completed".to_owned(),
        Err(e) => e.replace(&address.to_string(), "ADDR"),
    };
    let report = tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .expect("no report from the hostile server")
        .unwrap();
    let _ = stop.send(());
    let server_side = match report.outcome {
        Ok(_) => format!("{}: completed", report.peer),
        Err(e) => format!("{}: {e}", report.peer),
    };
    assert_eq!(
        peers.outputs(peers.client),
        Vec::<String>::new(),
        "the honest client wrote something"
    );
    (client_error, server_side, seen)
}

/// Every case of a malicious server against an honest `link`.
async fn against_an_honest_client(peers: &PeerDir, cases: &[Case]) {
    let server = peers.load(peers.server, PartyCommand::Serve);
    let client = peers.load(peers.client, PartyCommand::Link);
    let mut mismatches = Vec::new();
    for case in cases {
        let (client_error, server_side, seen) =
            hostile_server(peers, &server, &client, case.1, case.2).await;
        mismatches.extend(check(
            case,
            &seen,
            &[
                (
                    &client_error,
                    format!(
                        "link with {} at ADDR failed, nothing written: ",
                        peers.server
                    ),
                ),
                (
                    &server_side,
                    format!("{}: peer aborted the session: ", peers.client),
                ),
            ],
        ));
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // The honest client still links with an honest server.
    let (served, linked) = serve_while(&server, |address| link_to(&client, address)).await;
    assert_eq!(served.unwrap().len(), 1);
    assert!(linked.unwrap().outcome.counts.linked > 0);
}

use MessageKind::{
    CandidateTokens, LinkIds, PairPlan, PairScores, PsiGroupedQuery, PsiGroupedReply,
};

const BAD: &str = "InvalidArgument";
const BIG: &str = "ResourceExhausted";

/// What a malicious comparing side (the querier) sends in both modes: the grouped query.
#[rustfmt::skip]
const QUERY_CASES: &[Case] = &[
    ("trailing byte", PsiGroupedQuery, trailing_byte, BAD, "invalid psi message: grouped query has 1 trailing bytes"),
    ("truncated", PsiGroupedQuery, last_byte_cut, BAD, "invalid psi message: grouped query is truncated: expected {n} bytes, got {n}"),
    ("empty", PsiGroupedQuery, nothing, BAD, "invalid psi message: grouped query is truncated: expected 1 bytes, got 0"),
    ("wrong wire version", PsiGroupedQuery, wrong_version, BAD, "invalid psi message: grouped query has wire version 9, expected 1"),
    ("a reply where the query goes", PsiGroupedQuery, wrong_psi_kind, BAD, "invalid psi message: expected grouped query (kind 5), got message kind 6"),
    ("identity point", PsiGroupedQuery, identity_point, BAD, "invalid psi message: grouped query group 0 has the identity point at index 0"),
    ("invalid point encoding", PsiGroupedQuery, invalid_point, BAD, "invalid psi message: grouped query group 0 has an invalid point encoding at index 0"),
    ("duplicate point in a group", PsiGroupedQuery, duplicate_point, BAD, "invalid psi message: grouped query group {n} repeats at index 1 the point at index 0"),
    ("one group only", PsiGroupedQuery, one_group, BAD, "invalid psi message: grouped query has 1 groups, expected {G}"),
    ("a group for a pair nobody named", PsiGroupedQuery, extra_group, BAD, "invalid psi message: grouped query announces {G+1} groups, more than the limit of {G}"),
    ("oversize group", PsiGroupedQuery, oversize_group, BAD, "invalid psi message: grouped query group 0 has 100000 points, more than the limit of 256"),
    ("2^32 - 1 groups", PsiGroupedQuery, huge_group_count, BAD, "invalid psi message: grouped query announces 4294967295 groups, more than the limit of {G}"),
    ("group size off the buckets", PsiGroupedQuery, off_bucket_points, BAD, "invalid psi message: grouped query group 0 has {n} points, which is not the top of a size bucket"),
];

/// What a malicious other side (the answerer) sends in both modes: the grouped reply.
#[rustfmt::skip]
const REPLY_CASES: &[Case] = &[
    ("trailing byte", PsiGroupedReply, trailing_byte, BAD, "invalid psi message: grouped reply has 1 trailing bytes"),
    ("truncated", PsiGroupedReply, last_byte_cut, BAD, "invalid psi message: grouped reply is truncated: expected {n} bytes, got {n}"),
    ("wrong wire version", PsiGroupedReply, wrong_version, BAD, "invalid psi message: grouped reply has wire version 9, expected 1"),
    ("a query where the reply goes", PsiGroupedReply, wrong_psi_kind, BAD, "invalid psi message: expected grouped reply (kind 6), got message kind 5"),
    ("identity point", PsiGroupedReply, identity_point, BAD, "invalid psi message: grouped reply group 0 has the identity point at index 0"),
    ("invalid point encoding", PsiGroupedReply, invalid_point, BAD, "invalid psi message: grouped reply group 0 has an invalid point encoding at index 0"),
    ("duplicate point in a group", PsiGroupedReply, duplicate_point, BAD, "invalid psi message: grouped reply group {n} repeats at index 1 the point at index 0"),
    ("duplicate tag in a group", PsiGroupedReply, duplicate_tag, BAD, "invalid psi message: grouped reply group 0 repeats at index {n} the point at index {n}"),
    ("one group only", PsiGroupedReply, one_group, BAD, "invalid psi message: grouped reply has 1 groups, expected {n}"),
    ("a group for a pair nobody named", PsiGroupedReply, extra_group, BAD, "invalid psi message: grouped reply announces {n} groups, more than the limit of {n}"),
    ("oversize group", PsiGroupedReply, oversize_group, BAD, "invalid psi message: grouped reply group 0 has 100000 points, more than the limit of 256"),
    ("a point left unanswered", PsiGroupedReply, short_answer, BAD, "invalid psi message: grouped reply group 0 answers {n} points, expected {n}"),
    ("tag count off the buckets", PsiGroupedReply, off_bucket_tags, BAD, "invalid psi message: grouped reply group 0 has {n} points, which is not the top of a size bucket"),
];

/// Validate's own messages from a malicious comparing side: the pair plan and the scores.
#[rustfmt::skip]
const VALIDATE_QUERIER_CASES: &[Case] = &[
    ("plan: one link more than were linked", PairPlan, count_plus_one, BAD, "invalid pair plan: link count is {L+1}, expected {L}"),
    ("plan: a pair that was never linked", PairPlan, plan_unlinked_pair, BIG, "message of kind 'pair_plan' is {n} bytes, over its limit of {n} bytes"),
    ("plan: trailing byte", PairPlan, trailing_byte, BIG, "message of kind 'pair_plan' is {n} bytes, over its limit of {n} bytes"),
    ("plan: truncated", PairPlan, last_byte_cut, BAD, "truncated pair plan: 2 more bytes needed, 1 available"),
    ("plan: no holder", PairPlan, plan_zero_holders, BAD, "invalid pair plan: link 0 has 0 holders, expected 1 to 1024"),
    ("plan: too many holders", PairPlan, plan_too_many_holders, BAD, "invalid pair plan: link 0 has 1025 holders, expected 1 to 1024"),
    ("plan: a holder the query has no groups for", PairPlan, plan_extra_holder, BAD, "invalid psi message: grouped query has {G} groups, expected {n}"),
    ("scores: one pair more", PairScores, count_plus_one, BAD, "invalid pair scores: pair count is {L+1}, expected {L}"),
    ("scores: over 1", PairScores, score_over_one, BAD, "invalid pair scores: pair 0: score 1000001 is over 1000000"),
    ("scores: flag 2", PairScores, flag_two, BAD, "invalid pair scores: pair 0: flag 2, expected 0 or 1"),
    ("scores: trailing byte", PairScores, trailing_byte, BIG, "message of kind 'pair_scores' is {n} bytes, over its limit of {n} bytes"),
];

/// Fuzzy's own messages from a malicious comparing side: the pair plan and the link ids.
#[rustfmt::skip]
const FUZZY_QUERIER_CASES: &[Case] = &[
    ("plan: a candidate that was never sent", PairPlan, plan_unknown_candidate, BAD, "invalid pair plan: pair {L-1}: position 4294967295 is not ascending below {C} (a pair with a record that was never a candidate)"),
    ("plan: positions out of order", PairPlan, plan_descending, BAD, "invalid pair plan: pair 1: position {n} is not ascending below {C} (a pair with a record that was never a candidate)"),
    ("plan: more pairs than any plan", PairPlan, huge_count, BAD, "invalid pair plan: 4294967295 pairs, over the limit of {n}"),
    ("plan: one pair more than listed", PairPlan, count_plus_one, BAD, "truncated pair plan: 4 more bytes needed, 0 available"),
    ("plan: trailing byte", PairPlan, trailing_byte, BAD, "trailing data after pair plan: 1 bytes"),
    ("plan: a pair the query has no groups for", PairPlan, plan_repeat_a_pair, BAD, "invalid psi message: grouped query has {G} groups, expected {n}"),
    ("link ids: a candidate that was never sent", LinkIds, link_unknown_candidate, BAD, "invalid link ids: position 4294967295 is not ascending below {C}"),
    ("link ids: score over 1", LinkIds, link_score_over_one, BAD, "invalid link ids: position {n}: score 1000001 is over 1000000"),
    ("link ids: more links than candidates", LinkIds, huge_count, BAD, "invalid link ids: 4294967295 links for {C} revealed records"),
];

/// Fuzzy's own message from a malicious other side: the candidate tokens.
#[rustfmt::skip]
const FUZZY_ANSWERER_CASES: &[Case] = &[
    ("a token number nobody matched", CandidateTokens, unmatched_token, BAD, "invalid candidate tokens: record 0: token index 4294967294 is not ascending below {n}"),
    ("a candidate with no token", CandidateTokens, no_tokens, BAD, "invalid candidate tokens: record 0 has 0 matched tokens, expected 1 to 11"),
    ("more tokens than bands", CandidateTokens, too_many_tokens, BAD, "invalid candidate tokens: record 0 has 65 matched tokens, expected 1 to 11"),
    ("one candidate more than listed", CandidateTokens, count_plus_one, BAD, "truncated candidate tokens: 2 more bytes needed, 0 available"),
    ("trailing byte", CandidateTokens, trailing_byte, BAD, "trailing data after candidate tokens: 1 bytes"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_validate_clients_are_refused_and_the_server_serves_on() {
    let peers = PeerDir::registry_insurer(150);
    let cases: Vec<Case> = QUERY_CASES
        .iter()
        .chain(VALIDATE_QUERIER_CASES)
        .copied()
        .collect();
    against_an_honest_server(&peers, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_validate_servers_are_refused_by_link() {
    let peers = PeerDir::registry_insurer(150);
    against_an_honest_client(&peers, REPLY_CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fuzzy_clients_are_refused_and_the_server_serves_on() {
    let peers = PeerDir::two_hospitals(150);
    let cases: Vec<Case> = QUERY_CASES
        .iter()
        .chain(FUZZY_QUERIER_CASES)
        .copied()
        .collect();
    against_an_honest_server(&peers, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fuzzy_servers_are_refused_by_link() {
    let peers = PeerDir::two_hospitals(150);
    let cases: Vec<Case> = FUZZY_ANSWERER_CASES
        .iter()
        .chain(REPLY_CASES)
        .copied()
        .collect();
    against_an_honest_client(&peers, &cases).await;
}

#[test]
fn templates_match_only_numbers_where_they_say_so() {
    let expect = |text: &str, template: &str, expected: bool| {
        assert_eq!(matches(text, template), expected, "{text:?} ~ {template:?}");
    };
    expect("group 12 of 40", "group {n} of {n}", true);
    expect("group 12 of 40", "group 12 of {n}", true);
    expect("group x of 40", "group {n} of 40", false);
    expect("group 12 of 40!", "group {n} of 40", false);
    expect("group  of 40", "group {n} of 40", false);
    expect("exact", "exact", true);
}
