//! End-to-end tests of `blindlink serve` / `link` / `demo` over real loopback gRPC with mutual
//! TLS: the example configs of `examples/peers/` on small synthetic data sets, every mode
//! against the synthetic truth, concurrent sessions on one server, and every way a session can
//! fail — each must end both sides with a clear error and leave both output directories empty.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use blindlink_cli::commands::party::session::{self, CompletedSession, PreparedParty, RunOptions};
use blindlink_cli::commands::party::{LoadedParty, PartyCommand, PartyConfig, load_party};
use blindlink_protocol::{
    DisclosureLedger, DriverStep, LinkStatus, Message, ModeChunk, ModeConfig, ProtocolError, Role,
    SessionDriver, SessionId, new_driver,
};
use blindlink_service::{Initiator, Limits, PeerEndpoint, TransportSecurity};
use rand_core::SeedableRng;

use crate::support::blindlink;

/// A directory laid out like `examples/peers/` after its README's setup: data, certificates
/// (for the two parties and `mallory`), a key, the schema and both configs.
pub(crate) struct Peers {
    dir: tempfile::TempDir,
    pub(crate) server: &'static str,
    pub(crate) client: &'static str,
}

pub(crate) fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/peers")
}

impl Peers {
    pub(crate) fn new(hospitals: bool, persons: u64, mode: &str) -> Self {
        Self::with_synth_args(hospitals, persons, mode, &[])
    }

    pub(crate) fn with_synth_args(
        hospitals: bool,
        persons: u64,
        mode: &str,
        extra: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
        let (server, client, scenario) = if hospitals {
            ("hospital-a", "hospital-b", "two-hospitals")
        } else {
            ("registry", "insurer", "registry-insurer")
        };
        let persons = persons.to_string();
        let data = path("data");
        let mut synth = vec![
            "synth",
            "--scenario",
            scenario,
            "--persons",
            &persons,
            "--out",
            &data,
        ];
        synth.extend_from_slice(extra);
        blindlink(&synth).unwrap();
        let names = format!("{server},{client},mallory");
        blindlink(&["certs", "--out", &path("certs"), "--names", &names]).unwrap();
        blindlink(&["keygen", "--out", &path("linkage.key")]).unwrap();
        for schema in ["schema.toml", "clk-schema.toml"] {
            std::fs::copy(examples().join(schema), dir.path().join(schema)).unwrap();
        }
        let peers = Self {
            dir,
            server,
            client,
        };
        for name in [server, client] {
            peers.edit(name, |text| set_mode(text, mode));
        }
        peers
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub(crate) fn config(&self, party: &str) -> PathBuf {
        self.path(&format!("{party}.toml"))
    }

    /// Rewrites a party's config (from the example on first use).
    pub(crate) fn edit(&self, party: &str, change: impl FnOnce(String) -> String) {
        let path = self.config(party);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            std::fs::read_to_string(examples().join(format!("{party}.toml"))).unwrap()
        });
        std::fs::write(&path, change(text)).unwrap();
    }

    pub(crate) fn load(&self, party: &str, command: PartyCommand) -> (LoadedParty, PreparedParty) {
        let party = load_party(PartyConfig::load(&self.config(party), command).unwrap()).unwrap();
        let prepared = session::prepare(&party).unwrap();
        (party, prepared)
    }

    /// Files in a party's output directory (recursively), as relative paths.
    pub(crate) fn outputs(&self, party: &str) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut files = Vec::new();
        let dir = self.path(&format!("out/{party}"));
        walk(&dir, &dir, &mut files);
        files.sort();
        files
    }

    pub(crate) fn truth(&self) -> Vec<csv::StringRecord> {
        csv::Reader::from_path(self.path("data/truth.csv"))
            .unwrap()
            .records()
            .map(Result::unwrap)
            .collect()
    }
}

fn set_mode(text: String, mode: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("mode = "))
        .unwrap()
        .to_owned();
    text.replacen(&line, &format!("mode = \"{mode}\""), 1)
}

pub(crate) fn quick() -> RunOptions {
    RunOptions {
        seed: Some(7),
        limits: Limits {
            idle_timeout: Duration::from_secs(5),
            session_deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        quiet: true,
    }
}

/// Serves one session (or `sessions`) and runs `client` against it; returns both results with
/// errors as text (with causes).
pub(crate) async fn run_pair<F, Fut, T>(
    server: &(LoadedParty, PreparedParty),
    server_options: RunOptions,
    client: F,
) -> (Result<Vec<CompletedSession>, String>, T)
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: Future<Output = T>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = session::serve(&server.0, &server.1, listener, &server_options, async {
        let _ = stopped.await;
    });
    let linking = async {
        let result = client(address).await;
        // Lets a server that serves until shut down end (one-session servers end by themselves).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop.send(());
        result
    };
    let (served, linked) = tokio::join!(serving, linking);
    (served.map_err(|e| format!("{e:#}")), linked)
}

pub(crate) async fn honest_link(
    client: &(LoadedParty, PreparedParty),
    address: std::net::SocketAddr,
) -> Result<CompletedSession, String> {
    link_with_seed(client, address, 7).await
}

async fn link_with_seed(
    client: &(LoadedParty, PreparedParty),
    address: std::net::SocketAddr,
    seed: u64,
) -> Result<CompletedSession, String> {
    let options = RunOptions {
        seed: Some(seed),
        ..quick()
    };
    session::link(&client.0, &client.1, Some(address), &options)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// One honest session in `mode`; returns both sides' completed sessions.
pub(crate) async fn linked(peers: &Peers) -> (CompletedSession, CompletedSession) {
    let server = peers.load(peers.server, PartyCommand::Serve);
    let client = peers.load(peers.client, PartyCommand::Link);
    let (served, linked) =
        run_pair(&server, quick(), |address| honest_link(&client, address)).await;
    let mut served = served.unwrap();
    assert_eq!(served.len(), 1);
    (served.pop().unwrap(), linked.unwrap())
}

/// Client local id -> server local id, by link id, with the client's status.
fn joined(
    server: &CompletedSession,
    client: &CompletedSession,
) -> Vec<(String, String, LinkStatus)> {
    let by_link: HashMap<&str, &str> = server
        .outcome
        .rows
        .iter()
        .filter_map(|r| Some((r.link_id.as_deref()?, r.local_id.as_str())))
        .collect();
    client
        .outcome
        .rows
        .iter()
        .filter_map(|r| {
            let other = by_link.get(r.link_id.as_deref()?)?;
            Some((r.local_id.clone(), (*other).to_owned(), r.status))
        })
        .collect()
}

fn assert_outputs_written(peers: &Peers, party: &str, rows: usize) {
    let mut files = peers.outputs(party);
    // validate's comparing side also writes its Fellegi–Sunter model and explanations.
    files.retain(|f| f != "model.json" && f != "explanations.csv");
    assert_eq!(files, ["ledger.json", "links.csv", "report.txt"], "{party}");
    let links = csv::Reader::from_path(peers.path(&format!("out/{party}/links.csv")))
        .unwrap()
        .records()
        .count();
    assert_eq!(links, rows, "{party}: rows of links.csv");
    let ledger = std::fs::read_to_string(peers.path(&format!("out/{party}/ledger.json"))).unwrap();
    DisclosureLedger::from_json(&ledger).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_and_validate_against_the_registry_insurer_truth() {
    // Many planted wrong-person numbers, so that validate has something to flag.
    let wrong = [
        "--wrong-same-name-rate",
        "0.02",
        "--wrong-family-rate",
        "0.02",
        "--wrong-unrelated-rate",
        "0.02",
    ];
    for mode in ["exact", "validate"] {
        let peers = Peers::with_synth_args(false, 600, mode, &wrong);
        let (server, client) = linked(&peers).await;
        let truth: HashMap<String, (String, String)> = peers
            .truth()
            .iter()
            .map(|r| (r[0].to_owned(), (r[2].to_owned(), r[3].to_owned())))
            .collect();
        assert_outputs_written(&peers, "registry", server.outcome.rows.len());
        assert_outputs_written(&peers, "insurer", truth.len());
        assert_eq!(server.ledger.session_id, client.ledger.session_id);
        assert_eq!(server.ledger.sent, client.ledger.received, "{mode}");

        let pairs = joined(&server, &client);
        let correct = truth.values().filter(|t| t.1 == "correct").count();
        let mut linked_correct = 0;
        let mut flagged = 0;
        for (insurer, registry, status) in &pairs {
            let (true_registry, outcome) = &truth[insurer];
            let right = registry == true_registry;
            match (mode, status) {
                // exact links every shared number, wrong-person numbers included.
                (_, LinkStatus::Linked) if outcome == "correct" => {
                    assert!(right, "{mode}: {insurer} linked to {registry}");
                    linked_correct += 1;
                }
                ("validate", LinkStatus::Linked) => {
                    assert!(right, "validate linked wrong person {insurer} ({outcome})")
                }
                ("validate", LinkStatus::SuspectedWrongPerson) => {
                    assert!(!right, "validate flagged right person {insurer}");
                    flagged += 1;
                }
                _ => {}
            }
        }
        assert!(
            linked_correct as f64 >= 0.95 * correct as f64,
            "{mode}: {linked_correct} of {correct} correct records linked"
        );
        // Every wrong-person number is linked by exact; validate flags or holds back each.
        let planted = truth
            .values()
            .filter(|t| t.1.starts_with("wrong-person"))
            .count();
        assert!(planted >= 10, "only {planted} planted wrong-person numbers");
        if mode == "validate" {
            assert!(flagged > 0, "validate flagged nothing of {planted}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cardinality_learns_the_intersection_size_and_links_nothing() {
    let peers = Peers::new(false, 400, "cardinality");
    let (server, client) = linked(&peers).await;
    let numbers = |file: &str| -> HashSet<String> {
        let pipeline = blindlink_encoding::normalise::Pipeline::parse(&["my-number"]).unwrap();
        csv::Reader::from_path(peers.path(file))
            .unwrap()
            .records()
            .filter_map(|r| pipeline.apply(&r.unwrap()[1]).ok())
            .collect()
    };
    let shared = numbers("data/registry.csv")
        .intersection(&numbers("data/insurer.csv"))
        .count() as u64;
    for side in [&server, &client] {
        assert!(side.outcome.rows.iter().all(|r| r.link_id.is_none()));
        assert_eq!(
            side.outcome.learned.intersection_sizes,
            [("my_number".to_owned(), shared)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzy_and_clk_exchange_against_the_two_hospitals_truth() {
    for mode in ["fuzzy", "clk-exchange"] {
        let peers = Peers::new(true, 500, mode);
        if mode == "clk-exchange" {
            for party in ["hospital-a", "hospital-b"] {
                peers.edit(party, |t| {
                    t.replace(
                        "# reveal_decodable_encodings = true",
                        "reveal_decodable_encodings = true",
                    )
                });
            }
        }
        let (server, client) = linked(&peers).await;
        let truth: HashSet<(String, String)> = peers
            .truth()
            .iter()
            .map(|r| (r[1].to_owned(), r[0].to_owned()))
            .collect();
        let linked: Vec<(String, String)> = joined(&server, &client)
            .into_iter()
            .filter(|p| p.2 == LinkStatus::Linked)
            .map(|(b, a, _)| (b, a))
            .collect();
        let right = linked.iter().filter(|p| truth.contains(*p)).count();
        let precision = right as f64 / linked.len() as f64;
        let recall = right as f64 / truth.len() as f64;
        assert!(
            precision >= 0.98 && recall >= 0.9,
            "{mode}: precision {precision}, recall {recall}"
        );
        assert_outputs_written(&peers, "hospital-b", client.outcome.rows.len());
        assert_outputs_written(&peers, "hospital-a", server.outcome.rows.len());
    }
}

/// The MinHash shape of fuzzy's private blocking comes from `[linkage] fuzzy_bands` and
/// `fuzzy_minima_per_band`, is committed to by the handshake, and must agree on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzy_blocking_shape_comes_from_the_config_and_must_agree() {
    let peers = Peers::new(true, 200, "fuzzy");
    peers.edit("hospital-b", |t| {
        t.replace(
            "# fuzzy_bands = 1 ",
            "fuzzy_bands = 2\nfuzzy_minima_per_band = 6",
        )
    });
    let client = peers.load("hospital-b", PartyCommand::Link);
    let ModeConfig::Fuzzy(fuzzy) = &client.1.mode_config else {
        panic!("hospital-b runs fuzzy");
    };
    assert_eq!((fuzzy.lsh.bands, fuzzy.lsh.bits_per_band), (2, 6));
    assert!(client.1.mode_config.keys().is_empty());
    let (server, client) = failed(&peers, quick(), &client).await;
    assert_eq!(
        (server.as_str(), without_port(&client).as_str()),
        (
            "session with hospital-b failed, nothing written: parameter digest differs: parameter 'fuzzy.minhash' is '1x8' on this side and '2x6' on the peer",
            "link with hospital-a at ADDR failed, nothing written: parameter digest differs: parameter 'fuzzy.minhash' is '2x6' on this side and '1x8' on the peer",
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_on_one_server_do_not_cross() {
    let peers = Peers::new(false, 400, "exact");
    peers.edit("registry", |t| {
        t.replace("max_sessions = 1", "max_sessions = 0")
    });
    // A second insurer with every other record of the first.
    let insurer = std::fs::read_to_string(peers.path("data/insurer.csv")).unwrap();
    let half: String = insurer
        .lines()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(peers.path("data/insurer-half.csv"), half).unwrap();
    std::fs::copy(peers.config("insurer"), peers.config("insurer-half")).unwrap();
    peers.edit("insurer-half", |t| {
        t.replace("data/insurer.csv", "data/insurer-half.csv")
            .replace("out/insurer", "out/insurer-half")
    });
    let server = peers.load("registry", PartyCommand::Serve);
    let full = peers.load("insurer", PartyCommand::Link);
    let half = peers.load("insurer-half", PartyCommand::Link);
    let (served, (a, b, c)) = run_pair(&server, quick(), |address| async move {
        tokio::join!(
            link_with_seed(&full, address, 1),
            link_with_seed(&half, address, 2),
            link_with_seed(&full, address, 3)
        )
    })
    .await;
    let served = served.unwrap();
    assert_eq!(served.len(), 3);
    for client in [a.unwrap(), b.unwrap(), c.unwrap()] {
        let server_side = served
            .iter()
            .find(|s| s.ledger.session_id == client.ledger.session_id)
            .unwrap();
        // The server's rows of this session hold exactly the link ids of this client.
        let ids = |s: &CompletedSession| -> HashSet<String> {
            s.outcome
                .rows
                .iter()
                .filter_map(|r| r.link_id.clone())
                .collect()
        };
        assert_eq!(ids(server_side), ids(&client));
        assert_eq!(
            server_side.output_dir,
            peers.path(&format!(
                "out/registry/insurer-{}",
                client.ledger.session_id
            ))
        );
    }
    assert_eq!(peers.outputs("registry").len(), 9);
}

/// Runs a session expected to fail and returns (server error, client error), checking that
/// neither side wrote anything.
pub(crate) async fn failed(
    peers: &Peers,
    server_options: RunOptions,
    client: &(LoadedParty, PreparedParty),
) -> (String, String) {
    let server = peers.load(peers.server, PartyCommand::Serve);
    let (served, linked) = run_pair(&server, server_options, |address| {
        honest_link(client, address)
    })
    .await;
    // A refused TLS handshake never becomes a session, so the server has nothing to report.
    let server_side = match served {
        Ok(sessions) if sessions.is_empty() => "no session".to_owned(),
        other => other.unwrap_err(),
    };
    let outcome = (server_side, linked.unwrap_err());
    assert_eq!(peers.outputs(peers.server), Vec::<String>::new());
    assert_eq!(peers.outputs(peers.client), Vec::<String>::new());
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sessions_write_nothing_and_say_why_on_both_sides() {
    let peers = Peers::new(false, 200, "validate");
    let mut got = Vec::new();

    // Another schema: the insurer leaves the address out.
    let schema = std::fs::read_to_string(peers.path("schema.toml")).unwrap();
    let cut = schema.rfind("# Prefecture").unwrap();
    let other = schema[..cut].replace("bits = 2560", "bits = 2048");
    std::fs::write(peers.path("schema-no-address.toml"), other).unwrap();
    // (The example config lists no field weights: validate takes its comparisons from the
    // schema, so nothing in the config names the address.)
    peers.edit("insurer", |t| {
        t.replace(
            "schema = \"schema.toml\"",
            "schema = \"schema-no-address.toml\"",
        )
    });
    let client = peers.load("insurer", PartyCommand::Link);
    got.push(("schema", failed(&peers, quick(), &client).await));
    peers.edit("insurer", |t| {
        t.replace("schema-no-address.toml", "schema.toml")
    });

    // Another key.
    blindlink(&["keygen", "--out", peers.path("other.key").to_str().unwrap()]).unwrap();
    peers.edit("insurer", |t| {
        t.replace("key_file = \"linkage.key\"", "key_file = \"other.key\"")
    });
    let client = peers.load("insurer", PartyCommand::Link);
    got.push(("key", failed(&peers, quick(), &client).await));
    peers.edit("insurer", |t| t.replace("other.key", "linkage.key"));

    // A certificate from another CA.
    let other_ca = peers.path("other-ca");
    blindlink(&[
        "certs",
        "--out",
        other_ca.to_str().unwrap(),
        "--names",
        "insurer",
    ])
    .unwrap();
    peers.edit("insurer", |t| {
        t.replace(
            "cert = \"certs/insurer.pem\"",
            "cert = \"other-ca/insurer.pem\"",
        )
        .replace(
            "key = \"certs/insurer.key\"",
            "key = \"other-ca/insurer.key\"",
        )
    });
    let client = peers.load("insurer", PartyCommand::Link);
    got.push(("certificate", failed(&peers, quick(), &client).await));

    // A valid certificate of a peer that is not on the allow-list.
    peers.edit("insurer", |t| {
        t.replace("other-ca/insurer.pem", "certs/mallory.pem")
            .replace("other-ca/insurer.key", "certs/mallory.key")
    });
    let client = peers.load("insurer", PartyCommand::Link);
    got.push(("identity", failed(&peers, quick(), &client).await));
    peers.edit("insurer", |t| {
        t.replace("certs/mallory.pem", "certs/insurer.pem")
            .replace("certs/mallory.key", "certs/insurer.key")
    });

    // A server whose chunk limit is below what the client sends.
    let client = peers.load("insurer", PartyCommand::Link);
    let small = RunOptions {
        limits: Limits {
            max_chunk_bytes: 4096,
            ..quick().limits
        },
        ..quick()
    };
    got.push(("oversize", failed(&peers, small, &client).await));

    let client_prefix = "link with registry at ADDR failed, nothing written: ";
    let got: Vec<(&str, String, String)> = got
        .into_iter()
        .map(|(case, (server, client))| (case, server, without_port(&client)))
        .collect();
    // What the client of a refused TLS handshake sees depends on timing (see the service
    // tests); the server never sees a session.
    let (_, server, client) = &got[2];
    assert_eq!(server, "no session");
    assert!(
        client.starts_with(&format!("{client_prefix}transport: transport error: ")),
        "{client}"
    );
    let check = |case: &str, server: &str, client: &str| {
        let (_, s, c) = got.iter().find(|(name, ..)| *name == case).unwrap();
        assert_eq!(
            (s.as_str(), c.as_str()),
            (
                format!("session with {server}").as_str(),
                format!("{client_prefix}{client}").as_str()
            ),
            "{case}"
        );
    };
    check(
        "schema",
        "insurer failed, nothing written: schema digest differs: this side uses field 'address' that the peer does not",
        "schema digest differs: peer uses field 'address' that this side does not",
    );
    check(
        "key",
        "insurer failed, nothing written: linkage key differs (key-check value mismatch)",
        "linkage key differs (key-check value mismatch)",
    );
    check(
        "identity",
        "unauthorised peer failed, nothing written: peer certificate names 'mallory', none of which is on the allow-list",
        "peer ended the session (PermissionDenied): peer certificate names 'mallory', none of which is on the allow-list",
    );
    check(
        "oversize",
        "insurer failed, nothing written: message over the grpc size limit: decoded message length too large: found 5395 bytes, the limit is: 4160 bytes",
        "peer ended the session (ResourceExhausted): message over the grpc size limit: decoded message length too large: found 5395 bytes, the limit is: 4160 bytes",
    );
}

/// The client's error with the server's port replaced by `ADDR`.
pub(crate) fn without_port(text: &str) -> String {
    match (text.find("127.0.0.1:"), text.find(" failed")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}ADDR{}", &text[..start], &text[end..])
        }
        _ => text.to_owned(),
    }
}

/// An honest mode driver with something done to its messages.
struct Meddling {
    inner: blindlink_protocol::ModeDriver,
    change: Change,
    started: bool,
}

#[derive(Clone, Copy)]
enum Change {
    /// The last 32 bytes of the first mode message (a curve point) become `ff`s.
    InvalidPoint,
    /// A `done` before the first mode message.
    DoneFirst,
    /// A second copy of the first message's last chunk after it.
    Repeat,
    /// Stop answering (the test then drops the connection).
    GoSilent,
}

impl SessionDriver for Meddling {
    fn start(&mut self, ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        let mut step = self.inner.start(ledger)?;
        // The inner driver's messages made on demand, taken now so they can be changed.
        step.send
            .extend(std::iter::from_fn(|| self.inner.next_message()));
        self.started = true;
        match self.change {
            Change::InvalidPoint => {
                if let Some(Message::Mode(ModeChunk { payload, .. })) = step.send.first_mut() {
                    let len = payload.len();
                    payload[len - 32..].fill(0xff);
                }
            }
            Change::DoneFirst => step.send.insert(0, Message::Done),
            Change::Repeat => {
                let copy = step.send.last().cloned().unwrap();
                step.send.push(copy);
            }
            Change::GoSilent => {}
        }
        Ok(step)
    }

    fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        match self.change {
            Change::GoSilent => Ok(DriverStep::default()),
            _ => self.inner.handle(message, ledger),
        }
    }

    fn next_message(&mut self) -> Option<Message> {
        match self.change {
            Change::GoSilent => None,
            _ => self.inner.next_message(),
        }
    }
}

/// Runs a meddling insurer against the real registry server; returns (server error, client
/// error) and checks that the server wrote nothing.
async fn meddled(peers: &Peers, change: Change) -> (String, String) {
    let server = peers.load("registry", PartyCommand::Serve);
    let client = peers.load("insurer", PartyCommand::Link);
    let (served, linked) = run_pair(&server, quick(), |address| async move {
        let credentials =
            match blindlink_cli::commands::party::transport_security(&client.0.config).unwrap() {
                TransportSecurity::MutualTls(c) => c,
                TransportSecurity::InsecureLoopback => unreachable!("the example uses mutual TLS"),
            };
        let endpoint = PeerEndpoint {
            address,
            server_name: "registry".to_owned(),
            security: TransportSecurity::MutualTls(credentials),
            limits: quick().limits,
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let inner = new_driver(
            Role::Initiator,
            &client.1.mode_config,
            (*client.1.data).clone(),
            &mut rng,
        )
        .unwrap();
        let mut driver = Meddling {
            inner,
            change,
            started: false,
        };
        let mut initiator = Initiator::connect(&endpoint).await.unwrap();
        let run = initiator.run_session(
            client.1.offer.clone(),
            &client.0.secret,
            SessionId::random(&mut rng),
            &mut driver,
        );
        match change {
            Change::GoSilent => {
                // Drop the session (and its connection) once it is under way.
                let dropped = tokio::time::timeout(Duration::from_millis(500), run).await;
                assert!(dropped.is_err(), "the session ended by itself");
                drop(initiator);
                assert!(driver.started);
                "disconnected".to_owned()
            }
            _ => run.await.unwrap_err().to_string(),
        }
    })
    .await;
    assert_eq!(peers.outputs("registry"), Vec::<String>::new());
    (served.unwrap_err(), linked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_initiators_get_a_clear_error_and_nothing_is_written() {
    let peers = Peers::new(false, 200, "validate");
    let mut got = Vec::new();
    for (case, change) in [
        ("invalid point", Change::InvalidPoint),
        ("done first", Change::DoneFirst),
        ("repeated message", Change::Repeat),
        ("disconnect", Change::GoSilent),
    ] {
        got.push((case, meddled(&peers, change).await));
    }
    let server = |e: &str| format!("session with insurer failed, nothing written: {e}");
    let check = |i: usize, server_error: &str, client_error: &str| {
        assert_eq!(
            (got[i].1.0.as_str(), got[i].1.1.as_str()),
            (server(server_error).as_str(), client_error),
            "{}",
            got[i].0
        );
    };
    check(
        0,
        "invalid psi message: blinded set has an invalid point encoding at index 167",
        "peer ended the session (InvalidArgument): invalid psi message: blinded set has an invalid point encoding at index 167",
    );
    check(
        1,
        "unexpected message 'done' during the private set intersection: expected psi_blinded_set",
        "peer ended the session (FailedPrecondition): unexpected message 'done' during the private set intersection: expected psi_blinded_set",
    );
    check(
        2,
        "unexpected message 'psi_blinded_set' during the private set intersection: expected psi_reblinded_set",
        "peer ended the session (FailedPrecondition): unexpected message 'psi_blinded_set' during the private set intersection: expected psi_reblinded_set",
    );
    check(
        3,
        "peer closed the session before the session was complete",
        "disconnected",
    );
}

#[test]
fn bad_configs_stop_serve_and_link_before_anything_happens() {
    let peers = Peers::new(false, 50, "validate");
    let config = peers.config("insurer");
    peers.edit("insurer", |t| {
        t.replace("id_column = \"record_id\"", "id_column = \"recordid\"")
    });
    let got = blindlink(&["link", "--quiet", "--config", config.to_str().unwrap()]).unwrap_err();
    assert_eq!(
        got,
        format!(
            "{}:1: no column 'recordid' (input.id_column names it)",
            peers.path("data/insurer.csv").display()
        )
    );
    let got = blindlink(&["serve", "--quiet", "--config", config.to_str().unwrap()]).unwrap_err();
    assert_eq!(
        got,
        format!(
            "{}: missing [server] section (listen, allowed_peers), which `serve` needs",
            config.display()
        )
    );
    assert_eq!(peers.outputs("insurer"), Vec::<String>::new());
}

#[test]
fn demo_runs_validate_end_to_end_and_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    blindlink(&["demo", "--persons", "300", "--out", out.to_str().unwrap()]).unwrap();
    for file in [
        "registry.toml",
        "insurer.toml",
        "schema.toml",
        "linkage.key",
        "certs/ca.pem",
        "data/truth.csv",
        "out/registry/links.csv",
        "out/insurer/ledger.json",
        "out/insurer/report.txt",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let again = blindlink(&["demo", "--persons", "300", "--out", out.to_str().unwrap()]);
    assert_eq!(
        again.unwrap_err(),
        format!(
            "{} is not empty; give a new or empty directory to --out",
            out.display()
        )
    );
}

#[test]
fn serve_and_link_commands_write_matching_link_files() {
    let peers = Peers::new(false, 200, "exact");
    // A free port for the config (the commands bind what the config says).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for party in ["registry", "insurer"] {
        peers.edit(party, |t| {
            t.replace("127.0.0.1:7443", &format!("127.0.0.1:{port}"))
        });
    }
    let registry = peers.config("registry");
    let server = std::thread::spawn(move || {
        blindlink(&["serve", "--quiet", "--config", registry.to_str().unwrap()])
    });
    let insurer = peers.config("insurer");
    let mut linked = Err(String::new());
    // The server needs a moment to bind; the client retries briefly.
    for _ in 0..50 {
        linked = blindlink(&["link", "--quiet", "--config", insurer.to_str().unwrap()]);
        if linked.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    linked.unwrap();
    server.join().unwrap().unwrap();
    let read = |party: &str| -> HashMap<String, String> {
        csv::Reader::from_path(peers.path(&format!("out/{party}/links.csv")))
            .unwrap()
            .records()
            .map(Result::unwrap)
            .filter(|r| !r[1].is_empty())
            .map(|r| (r[1].to_owned(), r[0].to_owned()))
            .collect()
    };
    let (registry_links, insurer_links) = (read("registry"), read("insurer"));
    assert!(!insurer_links.is_empty());
    let ids = |m: &HashMap<String, String>| m.keys().cloned().collect::<HashSet<_>>();
    assert_eq!(ids(&registry_links), ids(&insurer_links));
    let report = std::fs::read_to_string(peers.path("out/insurer/report.txt")).unwrap();
    assert!(
        report.starts_with("blindlink exact session ")
            && report.contains("(insurer as initiator) with registry"),
        "{report}"
    );
}
