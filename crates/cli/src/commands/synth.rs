//! Placeholder: this command is being written.

/// Arguments of `blindlink synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {}

/// Runs `blindlink synth`.
///
/// # Errors
/// Always, until the generator lands.
pub fn run(_args: SynthArgs) -> anyhow::Result<()> {
    anyhow::bail!("blindlink synth is not available in this build yet")
}
