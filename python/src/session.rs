//! `link` and `serve`: one party's side of linkage sessions, through the CLI's own config
//! loading, input reading and session runners over `blindlink-service`, on a tokio runtime
//! owned by the call. The outputs (`links.csv`, `ledger.json`, `report.txt`) are written as
//! `blindlink link` / `blindlink serve` write them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use blindlink_cli::commands::party::outputs::claim_output_dir;
use blindlink_cli::commands::party::session::{self, CompletedSession, RunOptions};
use blindlink_cli::commands::party::{LoadedParty, PartyCommand, PartyConfig, load_party};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{Kind, OrRaise};

/// How often `serve` lets the interpreter run the handlers of signals that arrived.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The runtime of one call: as the CLI's, one worker per core, at most four (the heavy work
/// is on rayon's pool).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.clamp(1, 4))
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Loads the config and the party's input as the CLI does, each step with its error class.
fn load(
    config_path: &std::path::Path,
    command: PartyCommand,
    insecure_loopback: bool,
    max_sessions: Option<u64>,
) -> PyResult<(
    LoadedParty,
    blindlink_cli::commands::party::outputs::OutputLock,
)> {
    let mut config = PartyConfig::load(config_path, command).or_raise(Kind::Config)?;
    config
        .confirm_transport(insecure_loopback)
        .or_raise(Kind::Config)?;
    if let Some(n) = max_sessions {
        config.max_sessions = n;
    }
    let lock = claim_output_dir(&config).or_raise(Kind::Input)?;
    let party = load_party(config).or_raise(Kind::Input)?;
    Ok((party, lock))
}

fn summary<'py>(py: Python<'py>, done: &CompletedSession) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("party", &done.party)?;
    out.set_item("peer", &done.peer)?;
    out.set_item("session_id", done.ledger.session_id.to_string())?;
    out.set_item("counts", blindlink_party::counts_line(&done.outcome.counts))?;
    out.set_item("output_dir", &done.output_dir)?;
    out.set_item("seconds", done.elapsed.as_secs_f64())?;
    Ok(out)
}

/// Runs `blindlink link --config <config_path>`: one session with the configured peer;
/// returns what it did (party, peer, session id, counts, output directory, seconds).
#[pyfunction]
#[pyo3(signature = (config_path, insecure_loopback=false, quiet=true, seed=None))]
pub(crate) fn link<'py>(
    py: Python<'py>,
    config_path: PathBuf,
    insecure_loopback: bool,
    quiet: bool,
    seed: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let done = py.detach(|| -> PyResult<CompletedSession> {
        let (party, _lock) = load(&config_path, PartyCommand::Link, insecure_loopback, None)?;
        let prepared = session::prepare(&party).or_raise(Kind::Config)?;
        let options = RunOptions {
            quiet,
            seed,
            ..RunOptions::default()
        };
        let rt = runtime().or_raise(Kind::Protocol)?;
        rt.block_on(async { session::link(&party, &prepared, None, &options).await })
            .or_raise(Kind::Protocol)
    })?;
    summary(py, &done)
}

/// Runs `blindlink serve --config <config_path>`: serves until `sessions` sessions completed
/// (default: the config's `[server] max_sessions`; 0 = no limit) or `timeout` seconds passed
/// (then the server drains: running sessions finish), or a signal handler raising (Ctrl-C:
/// the server drains, then KeyboardInterrupt is raised; signals reach Python's handlers only
/// on the main thread). Installs no signal handler of its own. Returns the completed sessions.
#[pyfunction]
#[pyo3(signature = (config_path, sessions=None, timeout=None, insecure_loopback=false, quiet=true, seed=None))]
pub(crate) fn serve<'py>(
    py: Python<'py>,
    config_path: PathBuf,
    sessions: Option<u64>,
    timeout: Option<f64>,
    insecure_loopback: bool,
    quiet: bool,
    seed: Option<u64>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let done = py.detach(move || -> PyResult<Vec<CompletedSession>> {
        let (party, _lock) = load(
            &config_path,
            PartyCommand::Serve,
            insecure_loopback,
            sessions,
        )?;
        let listen = party
            .config
            .listen
            .context("the config has no [server] listen address")
            .or_raise(Kind::Config)?;
        let prepared = session::prepare(&party).or_raise(Kind::Config)?;
        let options = RunOptions {
            quiet,
            seed,
            ..RunOptions::default()
        };
        let timeout = timeout.map(Duration::from_secs_f64);
        let rt = runtime().or_raise(Kind::Protocol)?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))
                .or_raise(Kind::Config)?;
            // Drains on the timeout or when a Python signal handler raises (Ctrl-C:
            // KeyboardInterrupt). No OS signal handler is installed (tokio's `ctrl_c` would
            // install one for the whole process that outlives the call): this thread, which
            // `block_on` polls this future on, asks the interpreter every `SIGNAL_POLL` to run
            // the handlers of signals that arrived, as a pure-Python loop would. So signals
            // are seen only when `serve` runs on the main thread, as in Python itself.
            let interrupt = Arc::new(tokio::sync::Notify::new());
            let interrupted = Arc::clone(&interrupt);
            let shutdown = async move {
                let timeout = async {
                    match timeout {
                        Some(t) => tokio::time::sleep(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = timeout => {}
                    () = interrupted.notified() => {}
                }
            };
            let serving = session::serve(&party, &prepared, listener, &options, shutdown);
            tokio::pin!(serving);
            let mut poll = tokio::time::interval(SIGNAL_POLL);
            let mut raised: Option<PyErr> = None;
            let served = loop {
                tokio::select! {
                    served = &mut serving => break served,
                    _ = poll.tick(), if raised.is_none() => {
                        if let Err(e) = Python::attach(|py| py.check_signals()) {
                            raised = Some(e);
                            interrupt.notify_one();
                        }
                    }
                }
            };
            // The handler's exception once the running sessions are drained.
            match raised {
                Some(e) => Err(e),
                None => served.or_raise(Kind::Protocol),
            }
        })
    })?;
    py.check_signals()?;
    done.iter()
        .map(|d| summary(py, d))
        .collect::<PyResult<Vec<_>>>()
}
