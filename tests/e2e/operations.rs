//! End-to-end tests of the server's operations (issue 11), all on loopback with mutual TLS:
//! refused attempts do not use up `max_sessions`; idle connections are closed and capped and
//! a saturated server says so; health and reflection answer only allow-listed peers;
//! plaintext with an allow-list is refused; `serve` drains on SIGTERM; refusals below the
//! protocol leave a log line with the peer's address and the reason.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blindlink_cli::commands::party::session;
use blindlink_cli::commands::party::{PartyCommand, PartyConfig, load_party};
use blindlink_protocol::{
    Mode, Parameters, PingInitiator, SchemaDescriptor, SessionId, SessionOffer,
};
use blindlink_service::{
    DevPki, Initiator, Limits, PeerEndpoint, PingResponderFactory, Responder, ServerConfig,
    ServiceError, TlsCredentials, TransportSecurity,
};
use zeroize::Zeroizing;

use crate::support::{PeerDir, blindlink, quick};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// The example set-up (registry and insurer, switched to exact mode), plus an `other-ca/`
/// insurer and a second linkage key.
fn fixture(persons: u64) -> PeerDir {
    let peers = PeerDir::registry_insurer(persons);
    let path = |p: &str| peers.path(p).to_str().unwrap().to_owned();
    blindlink(&["certs", "--out", &path("other-ca"), "--names", "insurer"]).unwrap();
    blindlink(&["keygen", "--out", &path("other.key")]).unwrap();
    peers.set_mode("exact");
    peers
}

/// A copy of the insurer's config under another name (and output dir), changed.
fn insurer_variant(peers: &PeerDir, name: &str, change: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(peers.config("insurer")).unwrap();
    let path = peers.config(name);
    std::fs::write(
        &path,
        change(text.replace("out/insurer", &format!("out/{name}"))),
    )
    .unwrap();
    path
}

/// Links with the config at `config` against `address`; the error as text.
async fn link(config: &Path, address: SocketAddr) -> Result<u64, String> {
    let party = load_party(PartyConfig::load(config, PartyCommand::Link).unwrap()).unwrap();
    let prepared = session::prepare(&party).unwrap();
    session::link(&party, &prepared, Some(address), &quick())
        .await
        .map(|s| s.outcome.counts.linked)
        .map_err(|e| format!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_attempts_do_not_use_up_a_one_session_server() {
    let fixture = fixture(150);
    // The shipped example serves one session (max_sessions = 1).
    let mallory = insurer_variant(&fixture, "mallory", |t| {
        t.replace("certs/insurer.pem", "certs/mallory.pem")
            .replace("certs/insurer.key", "certs/mallory.key")
    });
    let forged = insurer_variant(&fixture, "forged", |t| {
        t.replace("certs/insurer.pem", "other-ca/insurer.pem")
            .replace("certs/insurer.key", "other-ca/insurer.key")
    });
    let wrong_key = insurer_variant(&fixture, "wrong-key", |t| {
        t.replace("linkage.key", "other.key")
    });
    let server =
        load_party(PartyConfig::load(&fixture.config("registry"), PartyCommand::Serve).unwrap())
            .unwrap();
    let prepared = session::prepare(&server).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let options = quick();
    // No shutdown signal: the server must end by itself after its one completed session.
    let serving = session::serve(
        &server,
        &prepared,
        listener,
        &options,
        std::future::pending(),
    );
    let clients = async {
        let mut got = Vec::new();
        for config in [&mallory, &forged, &wrong_key] {
            got.push(link(config, address).await.map(|_| ()).unwrap_err());
        }
        let honest = link(&fixture.config("insurer"), address).await;
        (got, honest)
    };
    let (served, (refused, honest)) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(serving, clients)
    })
    .await
    .expect("the server did not end after its one completed session");
    let addr = address.to_string();
    let refused: Vec<String> = refused.iter().map(|e| e.replace(&addr, "ADDR")).collect();
    assert_eq!(
        refused[0],
        "link with registry at ADDR failed, nothing written: peer ended the session \
         (PermissionDenied): peer certificate names 'mallory', none of which is on the allow-list"
    );
    assert!(
        refused[1].starts_with("link with registry at ADDR failed, nothing written: transport: "),
        "{}",
        refused[1]
    );
    assert_eq!(
        refused[2],
        "link with registry at ADDR failed, nothing written: linkage key differs (key-check \
         value mismatch)"
    );
    let linked = honest.expect("the honest insurer was refused");
    assert!(linked > 100, "{linked} linked");
    let served = served.unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].peer, "insurer");
    assert!(fixture.path("out/registry/links.csv").is_file());
}

// --- Transport-level tests on a ping responder --------------------------------------------

fn offer() -> SessionOffer {
    SessionOffer {
        mode: Mode::Exact,
        schema: SchemaDescriptor::new([("name", "text")]).unwrap(),
        parameters: Parameters::new([("filter_bits", "1024")]).unwrap(),
    }
}

fn pki() -> DevPki {
    DevPki::generate(&["registry", "insurer", "mallory"]).unwrap()
}

/// A ping responder whose log lines are kept.
struct LoggedServer {
    address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl LoggedServer {
    async fn start(pki: &DevPki, limits: Limits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let config = ServerConfig {
            security: TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
            allowed_peers: vec!["insurer".to_owned()],
            limits,
            offer: offer(),
            secret: Zeroizing::new(SECRET.to_vec()),
        };
        let responder = Responder::new(config, PingResponderFactory, None)
            .log_to(move |line| lines.lock().unwrap().push(line.to_owned()));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(responder.serve(listener, async {
            let _ = stop.await;
        }));
        Self {
            address,
            log,
            _shutdown: shutdown,
        }
    }

    /// The log lines so far, with this server's port and peers' ports replaced.
    fn lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|l| without_ports(l))
            .collect()
    }
}

/// `127.0.0.1:PORT` becomes `127.0.0.1:P`.
fn without_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = rest[i + 10..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('P');
    }
    out.push_str(rest);
    out
}

fn limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(5),
        session_deadline: Duration::from_secs(15),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

fn endpoint(address: SocketAddr, credentials: TlsCredentials, limits: Limits) -> PeerEndpoint {
    PeerEndpoint {
        address,
        server_name: "registry".to_owned(),
        security: TransportSecurity::MutualTls(credentials),
        limits,
    }
}

async fn ping(endpoint: &PeerEndpoint, seed: u8) -> Result<(), ServiceError> {
    let mut initiator = Initiator::connect(endpoint).await?;
    let mut driver = PingInitiator::new(3, 100, seed);
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed.into());
    initiator
        .run_session(offer(), SECRET, SessionId::random(&mut rng), &mut driver)
        .await
        .map(|_| ())
}

/// Waits (bounded) until the server has closed `stream`: a read returns end of file or an error.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // The server sends nothing before the client hello, but be lenient.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_does_not_block_a_link() {
    let pki = pki();
    let limits = Limits {
        max_connections: 8,
        handshake_timeout: Duration::from_secs(2),
        ..limits()
    };
    let server = LoggedServer::start(&pki, limits.clone()).await;
    // 40 connections that never send a byte (bounded, loopback, closed when the test ends).
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(
            tokio::net::TcpStream::connect(server.address)
                .await
                .unwrap(),
        );
    }
    // The legitimate insurer gets through at once.
    let started = Instant::now();
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap(), limits);
    ping(&endpoint, 1).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "the link waited {waited:?}"
    );
    // Every silent connection is closed by the server: evicted at the limit or timed out.
    let started = Instant::now();
    for stream in &mut flood {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = server.lines();
    let evicted = "closed connection from 127.0.0.1:P: still in its tls handshake when the \
                   server reached its limit of 8 connections";
    let timed_out = "closed connection from 127.0.0.1:P: no tls handshake within 2s";
    let count = |line: &str| lines.iter().filter(|l| *l == line).count();
    // 40 silent connections and then the honest one against 8 slots: each arrival beyond the
    // eighth evicts the oldest handshake (32 + 1); the 7 left time out.
    assert_eq!((count(evicted), count(timed_out)), (33, 7), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_server_says_so_at_once_and_frees_idle_connections() {
    let pki = pki();
    let limits = Limits {
        max_connections: 2,
        connection_idle_timeout: Duration::from_secs(1),
        ..limits()
    };
    let server = LoggedServer::start(&pki, limits.clone()).await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap(), limits);
    // Two authenticated connections that open no session hold both slots (one call each
    // shows the server has them established, past their handshakes).
    let mut held = [
        Initiator::connect(&endpoint).await.unwrap(),
        Initiator::connect(&endpoint).await.unwrap(),
    ];
    for initiator in &mut held {
        initiator.server_info().await.unwrap();
    }
    let started = Instant::now();
    let error = ping(&endpoint, 2).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error.to_string(),
        "peer ended the session (ResourceExhausted): server is at capacity: all 2 connections \
         are in use; try again later"
    );
    // After the idle timeout the server closes the silent connections; the next link works.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ping(&endpoint, 3).await.unwrap();
    drop(held);
    let lines = server.lines();
    let idle = "closed connection from 127.0.0.1:P: no session or call for 1s";
    assert!(
        lines.iter().filter(|l| *l == idle).count() >= 2,
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"refused a session from 127.0.0.1:P: server is at capacity: all 2 connections are \
              in use; try again later"
                .to_owned()
        ),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_only_allow_listed_peers() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let pki = pki();
    let server = LoggedServer::start(&pki, limits()).await;
    let check = |name: &'static str| {
        let endpoint = endpoint(server.address, pki.credentials(name).unwrap(), limits());
        async move {
            let initiator = Initiator::connect(&endpoint).await.unwrap();
            let health = HealthClient::new(initiator.channel())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status);
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let reflection = ServerReflectionClient::new(initiator.channel())
                .server_reflection_info(tokio_stream::iter([request]))
                .await
                .map(|_| ());
            let show = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
            (health.map_err(show), reflection.map_err(show))
        }
    };
    let (health, reflection) = check("insurer").await;
    assert_eq!(health, Ok(1)); // SERVING
    assert_eq!(reflection, Ok(()));
    let denied = "PermissionDenied: peer certificate names 'mallory', none of which is on the \
                  allow-list"
        .to_owned();
    let (health, reflection) = check("mallory").await;
    assert_eq!(health, Err(denied.clone()));
    assert_eq!(reflection, Err(denied));
    let line = "refused a call from 127.0.0.1:P: peer certificate names 'mallory', none of which \
                is on the allow-list";
    assert_eq!(
        server.lines().iter().filter(|l| *l == line).count(),
        2,
        "{:#?}",
        server.lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_with_an_allow_list_is_refused_at_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        security: TransportSecurity::InsecureLoopback,
        allowed_peers: vec!["insurer".to_owned(), "hospital".to_owned()],
        limits: limits(),
        offer: offer(),
        secret: Zeroizing::new(SECRET.to_vec()),
    };
    let served = tokio::time::timeout(
        Duration::from_secs(5),
        Responder::new(config, PingResponderFactory, None).serve(listener, std::future::pending()),
    )
    .await
    .expect("serve did not refuse at once");
    assert_eq!(
        served.unwrap_err().to_string(),
        "refusing plaintext with an allow-list: insecure-loopback cannot authenticate peers, so \
         allowed_peers (insurer, hospital) would not be enforced; use mutual tls or leave \
         allowed_peers empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_rejections_are_logged_with_the_address_and_reason() {
    let pki = pki();
    let server = LoggedServer::start(&pki, limits()).await;
    let other = DevPki::generate(&["insurer"]).unwrap();
    let mut forged = other.credentials("insurer").unwrap();
    forged.ca_pem = pki.ca_pem.clone();
    let error = ping(&endpoint(server.address, forged, limits()), 4)
        .await
        .unwrap_err();
    assert!(error.to_string().starts_with("transport: "), "{error}");
    // A client that speaks no TLS at all.
    let mut junk = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut junk, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut junk, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lines = server.lines();
    // The client's channel may try the refused handshake twice (it reconnects once).
    lines.dedup();
    assert_eq!(
        lines,
        [
            "refused connection from 127.0.0.1:P: tls handshake failed: invalid peer \
             certificate: BadSignature",
            "refused connection from 127.0.0.1:P: tls handshake failed: received corrupt \
             message of type InvalidContentType",
        ],
        "{lines:#?}"
    );
    // No key material in any line: the PEM markers and the key's base64 never appear.
    let key_body: String = pki.parties[0]
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for line in &lines {
        assert!(!line.contains("PRIVATE KEY") && !line.contains(&key_body[..16]));
    }
}

// --- serve as a process: signals -----------------------------------------------------------

/// Runs `blindlink serve` as its own process, for signals.
struct ServeProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ServeProcess {
    fn start(config: &Path) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_blindlink-e2e"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The first stderr line containing `text`, within `within`.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with '{text}' from serve: {e}"),
            }
        }
    }

    /// Sends `signal` (e.g. `TERM`) to the server.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    fn exit(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut rest = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut rest);
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A loopback TCP proxy to `target` whose server-to-client direction can be held, so a session
/// stays in flight as long as the test wants. Serves at most 60 connections (the client's
/// retries), each copied by two threads that end with the connection.
fn holding_proxy(target: SocketAddr, hold: Arc<std::sync::atomic::AtomicBool>) -> SocketAddr {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().take(60) {
            let Ok(client) = client else { continue };
            let Ok(server) = std::net::TcpStream::connect(target) else {
                continue;
            };
            let copy = |mut from: std::net::TcpStream,
                        mut to: std::net::TcpStream,
                        hold: Option<Arc<std::sync::atomic::AtomicBool>>| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        while hold.as_ref().is_some_and(|h| h.load(Ordering::SeqCst)) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            copy(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                None,
            );
            copy(server, client, Some(Arc::clone(&hold)));
        }
    });
    address
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIGINT and SIGTERM both drain: the session running when the signal arrives (held in flight
/// by a proxy that stops passing the server's bytes) completes and writes its outputs on both
/// sides, then `serve` exits successfully.
#[test]
fn serve_drains_in_flight_sessions_on_sigterm_and_sigint() {
    use std::sync::atomic::{AtomicBool, Ordering};
    for signal in ["TERM", "INT"] {
        let fixture = fixture(300);
        let port = free_port();
        let hold = Arc::new(AtomicBool::new(false));
        let proxy = holding_proxy(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Arc::clone(&hold),
        );
        fixture.edit("registry", |t| {
            t.replace("127.0.0.1:7443", &format!("127.0.0.1:{port}"))
        });
        fixture.edit("insurer", |t| {
            t.replace("127.0.0.1:7443", &proxy.to_string())
        });
        let server = ServeProcess::start(&fixture.config("registry"));
        server.wait_for("listening on", Duration::from_secs(60));
        let insurer = fixture.config("insurer");
        let client = std::thread::spawn(move || {
            let mut linked = Err(String::new());
            // The server binds just after saying so; the client retries briefly.
            for _ in 0..50 {
                linked = blindlink(&["link", "--quiet", "--config", insurer.to_str().unwrap()]);
                if linked.is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            linked
        });
        server.wait_for(
            "session from insurer at 127.0.0.1:",
            Duration::from_secs(30),
        );
        // The server's answers stop here: the session cannot finish until the hold ends.
        hold.store(true, Ordering::SeqCst);
        server.signal(signal);
        let drained = server.wait_for("received: draining", Duration::from_secs(10));
        assert_eq!(
            drained,
            format!("SIG{signal} received: draining (running sessions finish, no new ones start)")
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !client.is_finished(),
            "SIG{signal}: the session ended while held"
        );
        hold.store(false, Ordering::SeqCst);
        client.join().unwrap().unwrap();
        let status = server.exit(Duration::from_secs(60));
        assert!(status.success(), "SIG{signal}: {status:?}");
        for party in ["registry", "insurer"] {
            assert!(
                fixture.path(&format!("out/{party}/links.csv")).is_file(),
                "SIG{signal}: {party}"
            );
        }
    }
}
