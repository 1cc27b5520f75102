//! Placeholder: this command is being written.

/// Arguments of `blindlink describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {}

/// Runs `blindlink describe`.
///
/// # Errors
/// Always, until the encoder lands.
pub fn run(_args: DescribeArgs) -> anyhow::Result<()> {
    anyhow::bail!("blindlink describe is not available in this build yet")
}
