//! Placeholder: this command is being written.

/// Subcommands of `blindlink bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Both PSI parties in memory.
    Psi,
}

/// Runs `blindlink bench`.
///
/// # Errors
/// Always, until the PSI crate lands.
pub fn run(_cmd: BenchCommand) -> anyhow::Result<()> {
    anyhow::bail!("blindlink bench is not available in this build yet")
}
