//! `blindlink link --config insurer.toml`: the initiator of a linkage session. Reads and
//! encodes its input, connects to the configured peer (mutual TLS unless the config says
//! `insecure_loopback`), runs one session of the configured mode and writes `links.csv`,
//! `ledger.json` and `report.txt`; a failed session writes nothing. The output directory is
//! checked, created and locked first, before the input is read.

use super::party::outputs::claim_output_dir;
use super::party::session::{self, RunOptions};
use super::party::{PartyArgs, PartyCommand, load_party};

/// Arguments of `blindlink link`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (see examples/peers/README.md):\n  blindlink link --config examples/peers/insurer.toml"
)]
pub struct LinkArgs {
    /// The config and transport options.
    #[command(flatten)]
    pub party: PartyArgs,
    /// Connect to this address instead of the config's `[peer] address` (shard I's server
    /// under a job engine: `registry-3.registry:7443`); the server's certificate must still
    /// carry the config's `[peer] name`.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_address: Option<String>,
}

/// Runs `blindlink link`.
///
/// # Errors
/// A bad config or input, no connection, or whatever ended the session.
pub fn run(args: LinkArgs) -> anyhow::Result<()> {
    let mut config = args.party.load_config(PartyCommand::Link)?;
    if let Some(address) = &args.peer_address {
        let address = super::party::resolve_flag("--peer-address", address, &config)?;
        if let Some(peer) = config.peer.as_mut() {
            peer.0 = address;
        }
    }
    // Before reading the input or connecting: a session must not run only to find at the end
    // that its outputs cannot be written, or mix its files with a concurrent run's.
    let _output = claim_output_dir(&config)?;
    if !args.party.quiet {
        eprintln!("reading and encoding {}", config.input);
    }
    let mut party = load_party(config)?;
    let prepared = session::prepare(&party)?;
    // The protocol holds its own copy of the records from here on.
    party.records.release_columns();
    super::party::shard_progress(args.party.quiet, &party);
    let options = RunOptions {
        quiet: args.party.quiet,
        ..RunOptions::default()
    };
    let done = super::runtime()?
        .block_on(async { session::link(&party, &prepared, None, &options).await })?;
    if !args.party.quiet {
        eprintln!(
            "session {} with {} in {:.2} s: {}; outputs in {}",
            done.ledger.session_id,
            done.peer,
            done.elapsed.as_secs_f64(),
            blindlink_party::counts_line(&done.outcome.counts),
            done.output_dir.display()
        );
    }
    Ok(())
}
