//! One module per subcommand: each defines its clap arguments and a `run` function.

pub mod bench;
pub mod bench_leakage;
pub mod certs;
pub mod demo;
pub mod describe;
pub mod encode;
pub mod evaluate;
pub mod keygen;
pub mod link;
pub mod matching;
pub mod party;
pub mod schema;
pub mod serve;
pub mod synth;

/// The async runtime of `serve`, `link` and `demo`: two worker threads (the machines this
/// runs on have two cores; the protocol's heavy work runs on rayon's pool).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}
