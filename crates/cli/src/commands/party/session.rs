//! Runs one party's side of linkage sessions over the gRPC service: builds the mode
//! configuration and the handshake offer from the party's config and schema, turns its records
//! into the protocol's [`PartyData`], serves (responder) or links (initiator), and writes the
//! outputs of every completed session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindlink_party::report_text;
use blindlink_protocol::{
    DisclosureLedger, EstablishedSession, LinkOutcome, ModeConfig, OutcomeHandle, PartyData,
    ProtocolError, Role, SessionDriver, SessionId, Transcript, new_driver,
};
use blindlink_service::{
    DriverFactory, Initiator, Limits, PeerEndpoint, Responder, ServerConfig, SessionReport,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::outputs::write_outputs;
use super::{LoadedParty, transport_security};

pub use blindlink_party::PreparedParty;

/// Builds the mode configuration, the offer and the protocol data of a loaded party
/// ([`blindlink_party::prepare()`]).
///
/// # Errors
/// The config does not suit the mode: a `[[linkage.validate_field]]` names no schema field,
/// the mode needs field tokens or CLKs that were not read, or the mode configuration is
/// invalid (`clk-exchange` without `[linkage] reveal_decodable_encodings = true`, say).
pub fn prepare(party: &LoadedParty) -> anyhow::Result<PreparedParty> {
    let prepared =
        blindlink_party::prepare(&party.config, &party.schema, &party.secret, &party.records)?;
    for warning in &prepared.warnings {
        eprintln!("{warning}");
    }
    Ok(prepared)
}

/// A completed session of this party.
#[derive(Debug, Clone)]
pub struct CompletedSession {
    /// This party's name.
    pub party: String,
    /// The authenticated peer.
    pub peer: String,
    /// The rows and what was learned.
    pub outcome: LinkOutcome,
    /// The disclosure ledger.
    pub ledger: DisclosureLedger,
    /// Where its outputs were written.
    pub output_dir: PathBuf,
    /// From the first message to the end.
    pub elapsed: Duration,
}

/// How a party runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Seed of the session randomness (ECDH scalars, shuffles, link ids); `None`: the OS.
    pub seed: Option<u64>,
    /// Transport limits.
    pub limits: Limits,
    /// No progress messages.
    pub quiet: bool,
}

/// The transport limits with the config's `[limits]` in place of the defaults they set.
fn limits_for(base: &Limits, config: &super::PartyConfig) -> Limits {
    let mut limits = base.clone();
    if let Some(deadline) = config.limits.session_deadline {
        limits.session_deadline = deadline;
    }
    if let Some(idle) = config.limits.idle_timeout {
        limits.idle_timeout = idle;
    }
    limits
}

fn session_rng(seed: Option<u64>) -> anyhow::Result<ChaCha20Rng> {
    match seed {
        Some(seed) => Ok(ChaCha20Rng::seed_from_u64(seed)),
        None => {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut()).map_err(|e| {
                anyhow::anyhow!("the operating system's random number generator failed: {e}")
            })?;
            Ok(ChaCha20Rng::from_seed(*bytes))
        }
    }
}

/// Creates the responder's mode driver per session and keeps a handle on its outcome.
struct ModeDriverFactory {
    config: ModeConfig,
    data: Arc<PartyData>,
    rng: Mutex<ChaCha20Rng>,
    outcomes: Arc<Mutex<HashMap<SessionId, (OutcomeHandle, Instant)>>>,
    /// `[output] transcript`: record every message of each session.
    transcript: bool,
}

impl DriverFactory for ModeDriverFactory {
    fn responder(
        &self,
        session: &EstablishedSession,
        _peer: &str,
    ) -> Result<Box<dyn SessionDriver>, ProtocolError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(seed.as_mut());
        let mut driver = new_driver(
            Role::Responder,
            &self.config,
            Arc::clone(&self.data),
            &mut ChaCha20Rng::from_seed(*seed),
        )?;
        if self.transcript {
            driver.keep_transcript();
        }
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                session.session_id,
                (driver.outcome_handle(), Instant::now()),
            );
        Ok(Box::new(driver))
    }
}

/// The bytes of `transcript.bin` when the config asks for one.
///
/// # Errors
/// The config asks for a transcript and the driver kept none (it cannot happen with the drivers
/// of this module, which are asked to keep one; it would be a bug, so say so rather than
/// write the other outputs without it).
fn transcript_bytes(
    config: &super::PartyConfig,
    transcript: Option<Transcript>,
) -> anyhow::Result<Option<Vec<u8>>> {
    match (config.transcript, transcript) {
        (false, _) => Ok(None),
        (true, Some(t)) => Ok(Some(t.to_bytes())),
        (true, None) => bail!(
            "{}: output.transcript is set but the session kept no transcript",
            config.source.display()
        ),
    }
}

/// Where a session's outputs go: the output directory itself when the server serves one
/// session, else a directory per session inside it.
fn session_output_dir(party: &LoadedParty, peer: &str, session: SessionId) -> PathBuf {
    if party.config.max_sessions == 1 || party.config.peer.is_some() {
        party.config.output_dir.clone()
    } else {
        party.config.output_dir.join(format!("{peer}-{session}"))
    }
}

/// Serves sessions on `listener` until `config.max_sessions` sessions completed (0: until
/// `shutdown` completes), writing each completed session's outputs. Failed sessions and
/// refused attempts do not count; they are logged, and if the server stops before any session
/// completed, the last failure is its error.
///
/// # Errors
/// Unreadable TLS files, a server failure, or (no session completed) the last session's error.
pub async fn serve(
    party: &LoadedParty,
    prepared: &PreparedParty,
    listener: TcpListener,
    options: &RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Vec<CompletedSession>> {
    let mut completed = Vec::new();
    serve_each(party, prepared, listener, options, shutdown, |s| {
        completed.push(s);
    })
    .await?;
    Ok(completed)
}

/// [`serve`], handing each completed session to `on_completed` instead of keeping them all
/// (a long-running server's memory must not grow with every session).
///
/// # Errors
/// As [`serve`].
pub async fn serve_each(
    party: &LoadedParty,
    prepared: &PreparedParty,
    listener: TcpListener,
    options: &RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut on_completed: impl FnMut(CompletedSession),
) -> anyhow::Result<()> {
    let config = &party.config;
    let security = transport_security(config)?;
    // Check the data against the mode before anyone connects.
    new_driver(
        Role::Responder,
        &prepared.mode_config,
        PartyData::default(),
        &mut session_rng(Some(0))?,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", config.source.display()))?;
    let outcomes = Arc::new(Mutex::new(HashMap::new()));
    let factory = ModeDriverFactory {
        config: prepared.mode_config.clone(),
        data: Arc::clone(&prepared.data),
        rng: Mutex::new(session_rng(options.seed)?),
        outcomes: Arc::clone(&outcomes),
        transcript: config.transcript,
    };
    let (report_tx, mut reports) = mpsc::unbounded_channel::<SessionReport>();
    let server_config = ServerConfig {
        security,
        allowed_peers: config.allowed_peers.clone(),
        limits: limits_for(&options.limits, config),
        offer: prepared.offer.clone(),
        secret: Zeroizing::new(party.secret.to_vec()),
    };
    let responder = Responder::new(server_config, factory, Some(report_tx));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(responder.serve(listener, async move {
        tokio::select! {
            _ = stop_rx => {}
            () = shutdown => {}
        }
    }));
    let mut ended: u64 = 0;
    let mut failure = None;
    let mut last_failed = None;
    while let Some(report) = reports.recv().await {
        match report.outcome {
            Ok(ledger) => {
                let entry = outcomes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&ledger.session_id);
                let Some((handle, started)) = entry else {
                    failure = Some(anyhow::anyhow!(
                        "session {} with {} ended without a driver",
                        ledger.session_id,
                        report.peer
                    ));
                    break;
                };
                let Some(outcome) = handle.take() else {
                    failure = Some(anyhow::anyhow!(
                        "session {} with {} ended before the mode finished",
                        ledger.session_id,
                        report.peer
                    ));
                    break;
                };
                let dir = session_output_dir(party, &report.peer, ledger.session_id);
                let report_body = report_text(&config.name, &outcome, &ledger, &prepared.notes);
                let transcript = match transcript_bytes(config, handle.transcript()) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                write_outputs(
                    &dir,
                    &outcome,
                    &ledger,
                    &report_body,
                    &party.records,
                    transcript.as_deref(),
                )?;
                if !options.quiet {
                    eprintln!(
                        "session {} with {}: {}; outputs in {}",
                        ledger.session_id,
                        report.peer,
                        blindlink_party::counts_line(&outcome.counts),
                        dir.display()
                    );
                }
                ended += 1;
                on_completed(CompletedSession {
                    party: config.name.clone(),
                    peer: report.peer,
                    outcome,
                    ledger,
                    output_dir: dir,
                    elapsed: started.elapsed(),
                });
            }
            Err(e) => {
                if let Some(id) = report.session_id {
                    outcomes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                }
                let error =
                    anyhow::anyhow!("session with {} failed, nothing written: {e}", report.peer);
                eprintln!("{error}");
                last_failed = Some(error);
            }
        }
        if config.max_sessions != 0 && ended >= config.max_sessions {
            break;
        }
    }
    let _ = stop_tx.send(());
    let served = server
        .await
        .map_err(|e| anyhow::anyhow!("the server task failed: {e}"))?;
    if let Some(error) = failure {
        return Err(error);
    }
    served.map_err(|e| anyhow::anyhow!("{e}"))?;
    match last_failed {
        Some(error) if ended == 0 => Err(error),
        _ => Ok(()),
    }
}

/// Runs one session against the configured peer at `address` (the config's `[peer]` address
/// unless given) and writes the outputs.
///
/// # Errors
/// Unreadable TLS files, no connection, or whatever ended the session; nothing is written.
pub async fn link(
    party: &LoadedParty,
    prepared: &PreparedParty,
    address: Option<SocketAddr>,
    options: &RunOptions,
) -> anyhow::Result<CompletedSession> {
    let config = &party.config;
    let Some((configured, server_name)) = &config.peer else {
        bail!(
            "{}: missing [peer] section (address, name), which `link` needs",
            config.source.display()
        );
    };
    let address = address.unwrap_or(*configured);
    let endpoint = PeerEndpoint {
        address,
        server_name: server_name.clone(),
        security: transport_security(config)?,
        limits: limits_for(&options.limits, config),
    };
    let mut rng = session_rng(options.seed)?;
    let mut driver = new_driver(
        Role::Initiator,
        &prepared.mode_config,
        Arc::clone(&prepared.data),
        &mut rng,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", config.source.display()))?;
    if config.transcript {
        driver.keep_transcript();
    }
    let started = Instant::now();
    let context = || format!("link with {server_name} at {address} failed, nothing written");
    let mut initiator = Initiator::connect(&endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(context)?;
    let session_id = SessionId::random(&mut rng);
    let ledger = initiator
        .run_session(
            prepared.offer.clone(),
            &party.secret,
            session_id,
            &mut driver,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(context)?;
    let outcome = driver
        .take_outcome()
        .ok_or_else(|| anyhow::anyhow!("the session ended before the mode finished"))
        .with_context(context)?;
    let dir = config.output_dir.clone();
    let report_body = report_text(&config.name, &outcome, &ledger, &prepared.notes);
    let transcript = transcript_bytes(config, driver.transcript()).with_context(context)?;
    write_outputs(
        &dir,
        &outcome,
        &ledger,
        &report_body,
        &party.records,
        transcript.as_deref(),
    )?;
    Ok(CompletedSession {
        party: config.name.clone(),
        peer: ledger.peer.clone(),
        outcome,
        ledger,
        output_dir: dir,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod limits_tests {
    use std::time::Duration;

    use blindlink_party::{LiteralAddresses, PartyCommand, SessionLimits};

    use super::{Limits, limits_for};

    #[test]
    fn the_configs_limits_replace_the_defaults_they_set() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/peers/registry.toml"
        ))
        .unwrap();
        let path = std::path::Path::new("examples/peers/registry.toml");
        let parse = |text: &str| {
            super::super::PartyConfig(
                blindlink_party::PartyConfig::parse(
                    text,
                    path,
                    PartyCommand::Serve,
                    &LiteralAddresses,
                )
                .unwrap(),
            )
        };
        let base = Limits::default();
        let plain = parse(&text);
        assert_eq!(plain.limits, SessionLimits::default());
        let got = limits_for(&base, &plain);
        assert_eq!(
            (got.session_deadline, got.idle_timeout),
            (base.session_deadline, base.idle_timeout)
        );
        let got = limits_for(
            &base,
            &parse(&format!("{text}\n[limits]\nsession_minutes = 480\n")),
        );
        assert_eq!(
            (got.session_deadline, got.idle_timeout),
            (Duration::from_secs(480 * 60), base.idle_timeout)
        );
        let got = limits_for(
            &base,
            &parse(&format!(
                "{text}\n[limits]\nsession_minutes = 2\nidle_seconds = 30\n"
            )),
        );
        assert_eq!(
            (got.session_deadline, got.idle_timeout, got.max_chunk_bytes),
            (
                Duration::from_secs(120),
                Duration::from_secs(30),
                base.max_chunk_bytes
            )
        );
    }
}
