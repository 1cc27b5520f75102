//! The gRPC transport's cost: sessions over loopback with mutual TLS, with plaintext loopback,
//! and the same message exchange in memory (encode + decode, no network), side by side.
//!
//! `cargo bench -p blindlink-benches --bench service`
//!
//! The ping driver is lock-step (each ping waits for its pong), so `echo_4MiB` measures
//! round trips of 64 KiB messages, a lower bound on the rate at which a streaming mode can move
//! bulk data; `handshake` is one session with no pings over an open connection.
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use blindlink_protocol::{
    DisclosureLedger, InitiatorHandshake, MAX_PING_PAYLOAD_BYTES, Message, Mode, Parameters,
    PingInitiator, PingResponder, ResponderHandshake, Role, SchemaDescriptor, SessionDriver,
    SessionId, SessionOffer,
};
use blindlink_service::{
    DevPki, Initiator, Limits, PeerEndpoint, PingResponderFactory, Responder, ServerConfig,
    TransportSecurity,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zeroize::Zeroizing;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const PINGS: u32 = 64; // 64 × 64 KiB = 4 MiB each way

fn offer() -> SessionOffer {
    SessionOffer {
        mode: Mode::Exact,
        schema: SchemaDescriptor::new([("name", "text"), ("dob", "date"), ("sex", "sex")]).unwrap(),
        parameters: Parameters::new([("filter_bits", "1024")]).unwrap(),
    }
}

fn start_server(rt: &tokio::runtime::Runtime, security: TransportSecurity) -> std::net::SocketAddr {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let config = ServerConfig {
            security,
            allowed_peers: vec!["insurer".to_owned()],
            limits: Limits::default(),
            offer: offer(),
            secret: Zeroizing::new(SECRET.to_vec()),
        };
        let responder = Responder::new(config, PingResponderFactory, None);
        tokio::spawn(responder.serve(listener, std::future::pending()));
        address
    })
}

fn connect(
    rt: &tokio::runtime::Runtime,
    address: std::net::SocketAddr,
    security: TransportSecurity,
) -> Initiator {
    rt.block_on(Initiator::connect(&PeerEndpoint {
        address,
        server_name: "registry".to_owned(),
        security,
        limits: Limits::default(),
    }))
    .unwrap()
}

fn session(rt: &tokio::runtime::Runtime, initiator: &mut Initiator, pings: u32, n: u64) {
    let mut driver = PingInitiator::new(pings, MAX_PING_PAYLOAD_BYTES, n as u8);
    let sid = SessionId::from_bytes((u128::from(n)).to_be_bytes());
    let ledger = rt
        .block_on(initiator.run_session(offer(), SECRET, sid, &mut driver))
        .unwrap();
    black_box(ledger);
}

/// The same exchange without a network: every message encoded and decoded once.
fn in_memory(pings: u32, n: u64) {
    let sid = SessionId::from_bytes((u128::from(n)).to_be_bytes());
    let through = |m: &Message| Message::decode(&m.encode().unwrap()).unwrap();
    let (waiting, hello) = InitiatorHandshake::start(offer(), SECRET, sid);
    let answer = ResponderHandshake::new(offer(), SECRET).handle(through(&hello));
    let established = answer.result.unwrap();
    waiting.handle(through(&answer.reply.unwrap())).unwrap();
    let mut la = DisclosureLedger::new(sid, Role::Initiator, Mode::Exact, "registry");
    let mut lb = DisclosureLedger::new(sid, Role::Responder, established.mode, "insurer");
    let mut a = PingInitiator::new(pings, MAX_PING_PAYLOAD_BYTES, n as u8);
    let mut b = PingResponder::default();
    let mut step = a.start(&mut la).unwrap();
    while !step.finished {
        let back = b.handle(through(&step.send[0]), &mut lb).unwrap();
        step = a.handle(through(&back.send[0]), &mut la).unwrap();
    }
    b.handle(through(&step.send[0]), &mut lb).unwrap();
    black_box((la, lb));
}

fn transport(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = DevPki::generate(&["registry", "insurer"]).unwrap();
    let tls_server = start_server(
        &rt,
        TransportSecurity::MutualTls(pki.credentials("registry").unwrap()),
    );
    let plain_server = start_server(&rt, TransportSecurity::InsecureLoopback);
    let mut tls = connect(
        &rt,
        tls_server,
        TransportSecurity::MutualTls(pki.credentials("insurer").unwrap()),
    );
    let mut plain = connect(&rt, plain_server, TransportSecurity::InsecureLoopback);

    let mut group = c.benchmark_group("service");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    let mut n = 0u64;
    group.bench_function("handshake/in_memory", |b| {
        b.iter(|| {
            n += 1;
            in_memory(0, n)
        })
    });
    group.bench_function("handshake/plaintext_loopback", |b| {
        b.iter(|| {
            n += 1;
            session(&rt, &mut plain, 0, n)
        })
    });
    group.bench_function("handshake/mutual_tls", |b| {
        b.iter(|| {
            n += 1;
            session(&rt, &mut tls, 0, n)
        })
    });
    group.throughput(Throughput::Bytes(
        2 * u64::from(PINGS) * MAX_PING_PAYLOAD_BYTES as u64,
    ));
    group.bench_function("echo_4MiB/in_memory", |b| {
        b.iter(|| {
            n += 1;
            in_memory(PINGS, n)
        })
    });
    group.bench_function("echo_4MiB/plaintext_loopback", |b| {
        b.iter(|| {
            n += 1;
            session(&rt, &mut plain, PINGS, n)
        })
    });
    group.bench_function("echo_4MiB/mutual_tls", |b| {
        b.iter(|| {
            n += 1;
            session(&rt, &mut tls, PINGS, n)
        })
    });
    group.finish();
}

criterion_group!(benches, transport);
criterion_main!(benches);
