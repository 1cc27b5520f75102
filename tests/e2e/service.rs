//! End-to-end tests of the gRPC transport: real loopback servers (127.0.0.1, port 0) with
//! mutual TLS, the handshake between two peers, every refusal with its exact error on both
//! sides, limits, concurrency, health checking and reflection; and the `keygen` and `certs`
//! commands. The ping driver is the test vehicle until the linkage modes exist.

use std::net::SocketAddr;
use std::time::Duration;

use blindlink_protocol::{
    Message, Mode, Parameters, PingInitiator, SchemaDescriptor, SessionDriver, SessionId,
    SessionOffer,
};
use blindlink_service::pb::Chunk;
use blindlink_service::{
    DevPki, Initiator, Limits, PeerEndpoint, PingResponderFactory, Responder, ServerConfig,
    ServiceError, SessionReport, TlsCredentials, TransportSecurity,
};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::support::blindlink;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn offer(mode: Mode, fields: &[(&str, &str)]) -> SessionOffer {
    SessionOffer {
        mode,
        schema: SchemaDescriptor::new(fields.iter().copied()).unwrap(),
        parameters: Parameters::new([("filter_bits", "1024"), ("hashes", "20")]).unwrap(),
    }
}

const FIELDS: &[(&str, &str)] = &[("name", "text"), ("dob", "date"), ("sex", "sex")];

fn session_id(seed: u64) -> SessionId {
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed);
    SessionId::random(&mut rng)
}

fn quick_limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(5),
        session_deadline: Duration::from_secs(15),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// A running responder and the reports of its sessions.
struct TestServer {
    address: SocketAddr,
    reports: mpsc::UnboundedReceiver<SessionReport>,
    _shutdown: oneshot::Sender<()>,
}

impl TestServer {
    async fn start(
        security: TransportSecurity,
        allowed: &[&str],
        offer: SessionOffer,
        secret: &[u8],
    ) -> Self {
        Self::start_with(security, allowed, offer, secret, quick_limits()).await
    }

    async fn start_with(
        security: TransportSecurity,
        allowed: &[&str],
        offer: SessionOffer,
        secret: &[u8],
        limits: Limits,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (report_tx, reports) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let config = ServerConfig {
            security,
            allowed_peers: allowed.iter().map(|s| (*s).to_owned()).collect(),
            limits,
            offer,
            secret: Zeroizing::new(secret.to_vec()),
        };
        let responder = Responder::new(config, PingResponderFactory, Some(report_tx));
        tokio::spawn(responder.serve(listener, async {
            let _ = shutdown_rx.await;
        }));
        Self {
            address,
            reports,
            _shutdown: shutdown,
        }
    }

    /// The next session report, as `peer: outcome`.
    async fn next_report(&mut self) -> String {
        let report = tokio::time::timeout(Duration::from_secs(10), self.reports.recv())
            .await
            .expect("no session report within 10 s")
            .expect("server stopped");
        match report.outcome {
            Ok(ledger) => format!("{}: ok {}", report.peer, ledger.mode),
            Err(e) => format!("{}: {e}", report.peer),
        }
    }
}

fn endpoint(address: SocketAddr, credentials: TlsCredentials) -> PeerEndpoint {
    PeerEndpoint {
        address,
        server_name: "registry".to_owned(),
        security: TransportSecurity::MutualTls(credentials),
        limits: quick_limits(),
    }
}

async fn ping_session(
    endpoint: &PeerEndpoint,
    offer: SessionOffer,
    secret: &[u8],
    seed: u8,
) -> Result<blindlink_protocol::DisclosureLedger, ServiceError> {
    let mut initiator = Initiator::connect(endpoint).await?;
    let mut driver = PingInitiator::new(5, 1000, seed);
    initiator
        .run_session(offer, secret, session_id(u64::from(seed)), &mut driver)
        .await
}

fn pki() -> DevPki {
    DevPki::generate(&["registry", "insurer", "hospital", "mallory"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_ping_over_mutual_tls() {
    let pki = pki();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Validate, FIELDS),
        SECRET,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());

    let info = Initiator::connect(&endpoint)
        .await
        .unwrap()
        .server_info()
        .await
        .unwrap();
    assert_eq!(
        (info.protocol_version, info.modes),
        (1, vec!["validate".to_owned()])
    );

    let client_ledger = ping_session(&endpoint, offer(Mode::Validate, FIELDS), SECRET, 1)
        .await
        .unwrap();
    let report = server.reports.recv().await.unwrap();
    let server_ledger = report.outcome.unwrap();
    assert_eq!(report.peer, "insurer");
    assert_eq!(client_ledger.peer, "registry");
    assert_eq!(report.session_id, Some(client_ledger.session_id));
    assert_eq!(server_ledger.session_id, client_ledger.session_id);
    // Whatever one side counts as sent, the other counts as received, byte for byte.
    assert_eq!(client_ledger.sent, server_ledger.received);
    assert_eq!(client_ledger.received, server_ledger.sent);
    assert_eq!(client_ledger.sent.by_kind["ping"].messages, 5);
    assert_eq!(client_ledger.sent.by_kind["done"].messages, 1);
    assert_eq!(client_ledger.received.by_kind["hello"].messages, 1);
}

/// Runs one session against a server with `server_offer`/`server_secret` and returns the
/// client's error and the server's report.
async fn mismatch(
    server_offer: SessionOffer,
    server_secret: &[u8],
    client_offer: SessionOffer,
    client_secret: &[u8],
) -> (String, String) {
    let pki = pki();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        server_offer,
        server_secret,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let client = ping_session(&endpoint, client_offer, client_secret, 2)
        .await
        .unwrap_err()
        .to_string();
    (client, server.next_report().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatches_end_both_sides_with_what_differs() {
    let check = |got: (String, String), client: &str, server: &str| {
        assert_eq!((got.0.as_str(), got.1.as_str()), (client, server));
    };
    let with_address = [
        ("name", "text"),
        ("dob", "date"),
        ("sex", "sex"),
        ("address", "text"),
    ];
    check(
        mismatch(
            offer(Mode::Validate, &with_address),
            SECRET,
            offer(Mode::Validate, FIELDS),
            SECRET,
        )
        .await,
        "schema digest differs: peer uses field 'address' that this side does not",
        "insurer: schema digest differs: this side uses field 'address' that the peer does not",
    );
    check(
        mismatch(
            offer(Mode::Validate, FIELDS),
            b"another key",
            offer(Mode::Validate, FIELDS),
            SECRET,
        )
        .await,
        "linkage key differs (key-check value mismatch)",
        "insurer: linkage key differs (key-check value mismatch)",
    );
    check(
        mismatch(
            offer(Mode::Validate, FIELDS),
            SECRET,
            offer(Mode::Exact, FIELDS),
            SECRET,
        )
        .await,
        "mode differs: this side exact, peer validate",
        "insurer: mode differs: this side validate, peer exact",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_another_ca_is_refused() {
    let pki = pki();
    let other = DevPki::generate(&["insurer"]).unwrap();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    // Trusts the right CA for the server, but presents a certificate the server's CA did not sign.
    let mut forged = other.credentials("insurer").unwrap();
    forged.ca_pem = pki.ca_pem.clone();
    let endpoint = endpoint(server.address, forged);
    let error = ping_session(&endpoint, offer(Mode::Exact, FIELDS), SECRET, 3)
        .await
        .unwrap_err()
        .to_string();
    // The server's TLS stack refuses the certificate during the handshake. What the client
    // sees depends on timing (TLS 1.3 clients finish first): usually "received fatal alert:
    // DecryptError" (same CA name, wrong key), sometimes only "connection closed".
    assert!(error.starts_with("transport: transport error: "), "{error}");
    // The server never saw a request, so it reports no session.
    assert!(server.reports.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_peer_identity_is_permission_denied() {
    let pki = pki();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer", "hospital"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("mallory").unwrap());
    let error = ping_session(&endpoint, offer(Mode::Exact, FIELDS), SECRET, 4)
        .await
        .unwrap_err();
    assert_eq!(error.peer_code(), Some("PermissionDenied"));
    assert_eq!(
        error.to_string(),
        "peer ended the session (PermissionDenied): peer certificate names 'mallory', none of \
         which is on the allow-list"
    );
    assert_eq!(
        server.next_report().await,
        "unauthorised peer: peer certificate names 'mallory', none of which is on the allow-list"
    );
    let info = Initiator::connect(&endpoint)
        .await
        .unwrap()
        .server_info()
        .await;
    assert_eq!(info.unwrap_err().peer_code(), Some("PermissionDenied"));
}

/// Sends raw chunks as the first messages of a session and returns the status the server ends
/// it with, and the server's report.
async fn raw_session(chunks: Vec<Chunk>, limits: Limits) -> (String, String) {
    let pki = pki();
    let mut server = TestServer::start_with(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
        limits,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let mut initiator = Initiator::connect(&endpoint).await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    let sender = tokio::spawn(async move {
        for chunk in chunks {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
        // Keep the stream open until the server ends it.
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let response = initiator
        .raw()
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let status = match response {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("server ended the stream without an error"),
                    Err(status) => break status,
                }
            }
        }
    };
    sender.abort();
    (
        format!("{:?}: {}", status.code(), status.message()),
        server.next_report().await,
    )
}

/// Opens a raw session, sends only the initiator's hello (exact mode) and waits for the
/// responder's; the sender keeps the stream open until dropped.
async fn open_after_hello(
    initiator: &mut Initiator,
    id: u64,
) -> (mpsc::Sender<Chunk>, tonic::Streaming<Chunk>) {
    let (_, hello) = blindlink_protocol::InitiatorHandshake::start(
        offer(Mode::Exact, FIELDS),
        SECRET,
        session_id(id),
    );
    let (tx, rx) = mpsc::channel(4);
    tx.send(chunk(hello.encode().unwrap(), true)).await.unwrap();
    let mut stream = initiator
        .raw()
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert!(
        stream.message().await.unwrap().is_some(),
        "the responder's hello"
    );
    (tx, stream)
}

fn chunk(data: Vec<u8>, last: bool) -> Chunk {
    Chunk { data, last }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_out_of_order_messages_are_refused() {
    // A ping announced by its kind byte grows past its 64 KiB bound over two chunks: refused
    // as soon as the bound is crossed, before the message is complete.
    let mut first = vec![0u8; 40_000];
    first[0] = 0x10;
    let got = raw_session(
        vec![chunk(first, false), chunk(vec![0; 40_000], false)],
        quick_limits(),
    )
    .await;
    assert_eq!(
        got,
        (
            "ResourceExhausted: message of kind 'ping' is 80000 bytes, over its limit of 65545 bytes"
                .to_owned(),
            "insurer: message of kind 'ping' is 80000 bytes, over its limit of 65545 bytes"
                .to_owned()
        )
    );

    // A chunk over the chunk limit.
    let limits = Limits {
        max_chunk_bytes: 1000,
        ..quick_limits()
    };
    let got = raw_session(vec![chunk(vec![0x01; 1001], false)], limits.clone()).await;
    assert_eq!(
        got,
        (
            "ResourceExhausted: chunk of 1001 bytes is over the limit of 1000 bytes".to_owned(),
            "insurer: chunk of 1001 bytes is over the limit of 1000 bytes".to_owned()
        )
    );
    // A gRPC message over the transport's limit is refused by tonic itself.
    let got = raw_session(vec![chunk(vec![0x01; 2000], false)], limits).await;
    assert_eq!(
        got,
        (
            "ResourceExhausted: message over the grpc size limit: decoded message length too \
             large: found 2003 bytes, the limit is: 1064 bytes"
                .to_owned(),
            "insurer: message over the grpc size limit: decoded message length too large: found \
             2003 bytes, the limit is: 1064 bytes"
                .to_owned()
        )
    );

    // A ping before the hello.
    let ping = Message::Ping(blindlink_protocol::Ping {
        sequence: 0,
        payload: vec![1],
    });
    let got = raw_session(vec![chunk(ping.encode().unwrap(), true)], quick_limits()).await;
    assert_eq!(
        got,
        (
            "FailedPrecondition: unexpected message 'ping' at the start of a session: expected \
             the initiator's hello"
                .to_owned(),
            "insurer: unexpected message 'ping' at the start of a session: expected the \
             initiator's hello"
                .to_owned()
        )
    );

    // Garbage where a hello should be.
    let got = raw_session(vec![chunk(vec![0x01, 0, 1, 9], true)], quick_limits()).await;
    assert_eq!(
        got,
        (
            "InvalidArgument: truncated hello session id: 16 more bytes needed, 1 available"
                .to_owned(),
            "insurer: truncated hello session id: 16 more bytes needed, 1 available".to_owned()
        )
    );
}

/// Fails on the first pong, as a buggy or hostile initiator would.
struct FailingInitiator(PingInitiator);

impl SessionDriver for FailingInitiator {
    fn start(
        &mut self,
        ledger: &mut blindlink_protocol::DisclosureLedger,
    ) -> Result<blindlink_protocol::DriverStep, blindlink_protocol::ProtocolError> {
        self.0.start(ledger)
    }

    fn handle(
        &mut self,
        _message: Message,
        _ledger: &mut blindlink_protocol::DisclosureLedger,
    ) -> Result<blindlink_protocol::DriverStep, blindlink_protocol::ProtocolError> {
        Err(blindlink_protocol::ProtocolError::Invalid {
            what: "pong",
            reason: "this initiator refuses every pong".to_owned(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initiator_error_reaches_the_responder_and_a_disconnect_is_reported() {
    let pki = pki();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let mut initiator = Initiator::connect(&endpoint).await.unwrap();
    let error = initiator
        .run_session(
            offer(Mode::Exact, FIELDS),
            SECRET,
            session_id(5),
            &mut FailingInitiator(PingInitiator::new(3, 10, 5)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pong: this initiator refuses every pong"
    );
    assert_eq!(
        server.next_report().await,
        "insurer: peer aborted the session: invalid pong: this initiator refuses every pong"
    );

    // A peer that sends its hello and then goes away.
    let (tx, stream) = open_after_hello(&mut initiator, 6).await;
    drop(tx);
    drop(stream);
    assert_eq!(
        server.next_report().await,
        "insurer: peer closed the session before the session was complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_on_one_server_do_not_cross() {
    let pki = pki();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer", "hospital"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    let run = |name: &'static str, seed: u8| {
        let endpoint = endpoint(server.address, pki.credentials(name).unwrap());
        async move {
            let mut initiator = Initiator::connect(&endpoint).await.unwrap();
            // Payloads differ per seed: a pong from the other session would fail the check.
            let mut driver = PingInitiator::new(40, 3000, seed);
            initiator
                .run_session(
                    offer(Mode::Exact, FIELDS),
                    SECRET,
                    session_id(u64::from(seed)),
                    &mut driver,
                )
                .await
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(run("insurer", 10)),
        tokio::spawn(run("hospital", 11))
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_ne!(a.session_id, b.session_id);
    let mut reports = [
        server.reports.recv().await.unwrap(),
        server.reports.recv().await.unwrap(),
    ];
    reports.sort_by(|x, y| x.peer.cmp(&y.peer));
    let ledgers: Vec<_> = reports.iter().map(|r| r.outcome.clone().unwrap()).collect();
    assert_eq!(
        (reports[0].peer.as_str(), reports[1].peer.as_str()),
        ("hospital", "insurer")
    );
    assert_eq!(ledgers[0].session_id, b.session_id);
    assert_eq!(ledgers[1].session_id, a.session_id);
    assert_eq!(ledgers[0].received.by_kind["ping"].messages, 40);
    assert_eq!(ledgers[1].received, a.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limit_is_enforced() {
    let pki = pki();
    let limits = Limits {
        max_concurrent_sessions: 1,
        ..quick_limits()
    };
    let mut server = TestServer::start_with(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
        limits,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let mut initiator = Initiator::connect(&endpoint).await.unwrap();
    // Hold one session open (no hello yet) ...
    let (_hold_tx, hold_rx) = mpsc::channel::<Chunk>(1);
    let _held = initiator
        .raw()
        .session(tokio_stream::wrappers::ReceiverStream::new(hold_rx))
        .await
        .unwrap();
    // ... so the next is refused.
    let error = ping_session(&endpoint, offer(Mode::Exact, FIELDS), SECRET, 7)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "peer ended the session (ResourceExhausted): server is at its limit of 1 concurrent sessions"
    );
    assert_eq!(
        server.next_report().await,
        "insurer: server is at its limit of 1 concurrent sessions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let pki = pki();
    let server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    let initiator = Initiator::connect(&endpoint(
        server.address,
        pki.credentials("insurer").unwrap(),
    ))
    .await
    .unwrap();
    let mut health = HealthClient::new(initiator.channel());
    for service in ["", "blindlink.v1.Linkage"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status,
            ServingStatus::Serving as i32,
            "service '{service}'"
        );
    }

    let mut reflection = ServerReflectionClient::new(initiator.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a service list: {reply:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "blindlink.v1.Linkage",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_only_on_loopback() {
    let mut server = TestServer::start(
        TransportSecurity::InsecureLoopback,
        &[],
        offer(Mode::Cardinality, FIELDS),
        SECRET,
    )
    .await;
    let endpoint = PeerEndpoint {
        address: server.address,
        server_name: "registry".to_owned(),
        security: TransportSecurity::InsecureLoopback,
        limits: quick_limits(),
    };
    ping_session(&endpoint, offer(Mode::Cardinality, FIELDS), SECRET, 8)
        .await
        .unwrap();
    assert_eq!(
        server.next_report().await,
        "insecure-loopback: ok cardinality"
    );

    let remote: SocketAddr = "192.0.2.10:7443".parse().unwrap();
    let refused = Initiator::connect(&PeerEndpoint {
        address: remote,
        ..endpoint
    })
    .await
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "refusing plaintext on non-loopback address 192.0.2.10:7443 (insecure-loopback allows \
         only 127.0.0.0/8 and ::1)"
    );
}

#[test]
fn keygen_writes_a_fresh_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linkage.key");
    let path_text = path.to_str().unwrap();
    blindlink(&["keygen", "--out", path_text]).unwrap();
    let key = std::fs::read(&path).unwrap();
    assert_eq!(key.len(), 64);
    assert!(
        key.iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = blindlink(&["keygen", "--out", path_text]).unwrap_err();
    assert_eq!(
        again,
        format!("{path_text} already exists; refusing to overwrite a linkage key")
    );
    assert_eq!(std::fs::read(&path).unwrap(), key);
    let other = dir.path().join("other.key");
    blindlink(&["keygen", "--out", other.to_str().unwrap()]).unwrap();
    assert_ne!(std::fs::read(&other).unwrap(), key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_from_the_cli_carry_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let out_text = out.to_str().unwrap().to_owned();
    let cli_out = out_text.clone();
    tokio::task::spawn_blocking(move || {
        blindlink(&["certs", "--out", &cli_out, "--names", "registry,insurer"])
    })
    .await
    .unwrap()
    .unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ca.pem",
            "insurer.key",
            "insurer.pem",
            "registry.key",
            "registry.pem"
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("registry.key"), mode("insurer.key")), (0o600, 0o600));
    }
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let credentials = |name: &str| TlsCredentials {
        ca_pem: read("ca.pem"),
        cert_pem: read(&format!("{name}.pem")),
        key_pem: Zeroizing::new(read(&format!("{name}.key"))),
    };
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(credentials("registry")),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    ping_session(
        &endpoint(server.address, credentials("insurer")),
        offer(Mode::Exact, FIELDS),
        SECRET,
        9,
    )
    .await
    .unwrap();
    assert_eq!(server.next_report().await, "insurer: ok exact");

    let again = tokio::task::spawn_blocking(move || {
        blindlink(&["certs", "--out", &out_text, "--names", "registry"])
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        again.ends_with("ca.pem already exists; refusing to overwrite a certificate"),
        "{again}"
    );
    assert_eq!(
        blindlink(&[
            "certs",
            "--out",
            dir.path().join("x").to_str().unwrap(),
            "--names",
            "Registry"
        ])
        .unwrap_err(),
        "party name 'Registry' may contain only lowercase letters, digits, '-' and '.'"
    );
}

/// Sleeps before its first ping, so the session outlives the server's unary-call timeout.
struct SlowStart(PingInitiator);

impl SessionDriver for SlowStart {
    fn start(
        &mut self,
        ledger: &mut blindlink_protocol::DisclosureLedger,
    ) -> Result<blindlink_protocol::DriverStep, blindlink_protocol::ProtocolError> {
        std::thread::sleep(Duration::from_millis(400));
        self.0.start(ledger)
    }

    fn handle(
        &mut self,
        message: Message,
        ledger: &mut blindlink_protocol::DisclosureLedger,
    ) -> Result<blindlink_protocol::DriverStep, blindlink_protocol::ProtocolError> {
        self.0.handle(message, ledger)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_may_outlive_the_unary_call_timeout_but_not_its_idle_timeout() {
    let pki = pki();
    let limits = Limits {
        request_timeout: Duration::from_millis(150),
        idle_timeout: Duration::from_millis(1500),
        ..quick_limits()
    };
    let mut server = TestServer::start_with(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
        limits,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let mut initiator = Initiator::connect(&endpoint).await.unwrap();
    initiator
        .run_session(
            offer(Mode::Exact, FIELDS),
            SECRET,
            session_id(12),
            &mut SlowStart(PingInitiator::new(2, 10, 12)),
        )
        .await
        .unwrap();
    assert_eq!(server.next_report().await, "insurer: ok exact");

    // A peer that sends its hello and then nothing is cut off after the idle timeout.
    let (tx, mut stream) = open_after_hello(&mut initiator, 13).await;
    let status = stream.message().await.unwrap_err();
    assert_eq!(
        format!("{:?}: {}", status.code(), status.message()),
        "DeadlineExceeded: waiting for the peer's next message timed out after 1.5s"
    );
    assert_eq!(
        server.next_report().await,
        "insurer: waiting for the peer's next message timed out after 1.5s"
    );
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_in_use_is_refused() {
    let pki = pki();
    let mut server = TestServer::start(
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let mut initiator = Initiator::connect(&endpoint).await.unwrap();
    // A first session says hello and stays open ...
    let (tx, first) = open_after_hello(&mut initiator, 14).await;
    // ... so a second one with the same id is refused.
    let error = initiator
        .run_session(
            offer(Mode::Exact, FIELDS),
            SECRET,
            session_id(14),
            &mut PingInitiator::new(1, 1, 14),
        )
        .await
        .unwrap_err();
    assert_eq!(error.peer_code(), Some("AlreadyExists"));
    assert_eq!(
        server.next_report().await,
        format!(
            "insurer: session id {} is already in use on this server",
            session_id(14)
        )
    );
    // Once the first session ends, its id is free again.
    drop(tx);
    drop(first);
    assert_eq!(
        server.next_report().await,
        "insurer: peer closed the session before the session was complete"
    );
    initiator
        .run_session(
            offer(Mode::Exact, FIELDS),
            SECRET,
            session_id(14),
            &mut PingInitiator::new(1, 1, 14),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_the_wrong_name_is_refused_by_the_client() {
    let pki = pki();
    let mut server = TestServer::start(
        // The server presents the hospital's certificate where the client expects "registry".
        TransportSecurity::MutualTls(pki.credentials("hospital").unwrap()),
        &["insurer"],
        offer(Mode::Exact, FIELDS),
        SECRET,
    )
    .await;
    let endpoint = endpoint(server.address, pki.credentials("insurer").unwrap());
    let error = ping_session(&endpoint, offer(Mode::Exact, FIELDS), SECRET, 15)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("transport: cannot connect to 127.0.0.1:")
            && error.contains("certificate not valid for name \"registry\""),
        "{error}"
    );
    assert!(server.reports.try_recv().is_err());
}

/// A server that answers every session with the given chunks and then ends the stream.
struct HostileServer(Vec<Chunk>);

#[tonic::async_trait]
impl blindlink_service::pb::linkage_server::Linkage for HostileServer {
    type SessionStream = tokio_stream::Iter<std::vec::IntoIter<Result<Chunk, tonic::Status>>>;

    async fn session(
        &self,
        _request: tonic::Request<tonic::Streaming<Chunk>>,
    ) -> Result<tonic::Response<Self::SessionStream>, tonic::Status> {
        let items: Vec<_> = self.0.iter().cloned().map(Ok).collect();
        Ok(tonic::Response::new(tokio_stream::iter(items)))
    }

    async fn server_info(
        &self,
        _request: tonic::Request<blindlink_service::pb::ServerInfoRequest>,
    ) -> Result<tonic::Response<blindlink_service::pb::ServerInfoReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("hostile"))
    }
}

/// Runs a session against a plaintext loopback server that sends `chunks`; the client's error.
async fn against_hostile_server(chunks: Vec<Chunk>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = blindlink_service::pb::linkage_server::LinkageServer::new(HostileServer(chunks));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let endpoint = PeerEndpoint {
        address,
        server_name: "registry".to_owned(),
        security: TransportSecurity::InsecureLoopback,
        limits: quick_limits(),
    };
    ping_session(&endpoint, offer(Mode::Exact, FIELDS), SECRET, 16)
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_gets_a_clear_error() {
    let check = |got: String, expected: &str| assert_eq!(got, expected);
    check(
        against_hostile_server(vec![chunk(vec![0x42], true)]).await,
        "unknown message kind 0x42",
    );
    check(
        against_hostile_server(vec![chunk(vec![0x01, 0, 1], false)]).await,
        "peer closed the session in the middle of a message",
    );
    check(
        against_hostile_server(vec![]).await,
        "peer closed the session before answering the hello",
    );
    let pong = Message::Pong(blindlink_protocol::Ping {
        sequence: 0,
        payload: vec![],
    });
    check(
        against_hostile_server(vec![chunk(pong.encode().unwrap(), true)]).await,
        "unexpected message 'pong' during the handshake: expected the responder's hello",
    );
    check(
        against_hostile_server(vec![chunk(
            Message::abort("go away").encode().unwrap(),
            true,
        )])
        .await,
        "peer aborted the session: go away",
    );
}
