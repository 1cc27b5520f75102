//! Placeholder: this command is being written.

/// Arguments of `blindlink encode`.
#[derive(Debug, clap::Args)]
pub struct EncodeArgs {}

/// Runs `blindlink encode`.
///
/// # Errors
/// Always, until the encoder lands.
pub fn run(_args: EncodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("blindlink encode is not available in this build yet")
}
