//! Placeholder: this command is being written.

/// Subcommands of `blindlink schema`.
#[derive(Debug, clap::Subcommand)]
pub enum SchemaCommand {
    /// Validate a schema file.
    Check {
        /// The schema (native TOML or clkhash v3 JSON).
        file: std::path::PathBuf,
    },
}

/// Runs `blindlink schema`.
///
/// # Errors
/// Always, until the encoder lands.
pub fn run(_cmd: SchemaCommand) -> anyhow::Result<()> {
    anyhow::bail!("blindlink schema is not available in this build yet")
}
