//! `blindlink serve --config registry.toml`: the responder of linkage sessions. Reads and
//! encodes its input once, listens (mutual TLS unless the config says `insecure_loopback`),
//! lets the peers of its allow-list link, and writes `links.csv`, `ledger.json` and
//! `report.txt` for every completed session. By default it serves one session and exits
//! (`[server] max_sessions`, counting completed sessions only); a failed session writes
//! nothing. SIGINT (Ctrl-C) and SIGTERM both drain: no new connection or session is accepted,
//! the running sessions finish and write their outputs, then `serve` exits.

use anyhow::Context;

use super::party::session::{self, RunOptions};
use super::party::{PartyArgs, PartyCommand, load_party};

/// Arguments of `blindlink serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (see examples/peers/README.md):\n  blindlink serve --config examples/peers/registry.toml"
)]
pub struct ServeArgs {
    /// The config and transport options.
    #[command(flatten)]
    pub party: PartyArgs,
    /// Listen on this address instead of the config's `[server] listen` (a job engine gives
    /// each shard's server its own port or pod: `0.0.0.0:7443`).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
}

/// Runs `blindlink serve`.
///
/// # Errors
/// A bad config or input, a listener that cannot bind, or (serving one session) the session's
/// error.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.party.load_config(PartyCommand::Serve)?;
    if let Some(listen) = &args.listen {
        config.listen = Some(super::party::resolve_flag("--listen", listen, &config)?);
    }
    let _output = super::party::outputs::claim_output_dir(&config)?;
    let listen = config
        .listen
        .context("the config has no [server] listen address")?;
    if !args.party.quiet {
        eprintln!("reading and encoding {}", config.input);
    }
    let mut party = load_party(config)?;
    let prepared = session::prepare(&party)?;
    // The protocol holds its own copy of the records from here on.
    party.records.release_columns();
    super::party::shard_progress(args.party.quiet, &party);
    if !args.party.quiet {
        eprintln!(
            "{} records ready in {:.2} s; listening on {listen} for {} ({} mode)",
            prepared.data.len(),
            party.load_time.as_secs_f64(),
            party.config.allowed_peers.join(", "),
            party.config.mode
        );
    }
    let options = RunOptions {
        quiet: args.party.quiet,
        ..RunOptions::default()
    };
    super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let shutdown = shutdown_signal()?;
        // Completed sessions are written and dropped: memory stays flat however many are served.
        session::serve_each(&party, &prepared, listener, &options, shutdown, drop).await
    })?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM (Unix), saying which arrived and that the server drains.
///
/// # Errors
/// The signal handlers cannot be installed.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    Ok(async move {
        #[cfg(unix)]
        let name = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        #[cfg(not(unix))]
        let name = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        // Said even with --quiet: it explains why the server stops accepting.
        eprintln!("{name} received: draining (running sessions finish, no new ones start)");
    })
}
