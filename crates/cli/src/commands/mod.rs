//! One module per subcommand: each defines its clap arguments and a `run` function.

pub mod bench;
pub mod bench_leakage;
pub mod certs;
pub mod demo;
pub mod describe;
pub mod encode;
pub mod evaluate;
pub mod explain;
pub mod keygen;
pub mod link;
pub mod matching;
pub mod merge;
pub mod party;
pub mod schema;
pub mod serve;
pub mod split;
pub mod synth;

/// The async runtime of `serve`, `link` and `demo`: one worker thread per available core, at
/// most four. The workers only move frames and run the drivers' light steps; the protocol's
/// heavy work (hashing to the group, exponentiations) runs on rayon's pool, which takes the
/// cores itself, so more workers would only compete with it.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.clamp(1, 4))
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}
