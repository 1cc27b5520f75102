//! `blindlink demo`: placeholder while written.

/// Arguments of `blindlink demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Runs the demo.
///
/// # Errors
/// Never yet.
pub fn run(_args: DemoArgs) -> anyhow::Result<()> {
    Ok(())
}
