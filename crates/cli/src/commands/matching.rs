//! Placeholder: this command is being written.

/// Arguments of `blindlink match`.
#[derive(Debug, clap::Args)]
pub struct MatchArgs {}

/// Runs `blindlink match`.
///
/// # Errors
/// Always, until the matcher lands.
pub fn run(_args: MatchArgs) -> anyhow::Result<()> {
    anyhow::bail!("blindlink match is not available in this build yet")
}
