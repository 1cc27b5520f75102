//! Placeholder: this command is being written.

/// Arguments of `blindlink evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {}

/// Runs `blindlink evaluate`.
///
/// # Errors
/// Always, until the matcher lands.
pub fn run(_args: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::bail!("blindlink evaluate is not available in this build yet")
}
