//! Helpers shared by the end-to-end tests.

use std::path::PathBuf;

/// The directory holding the committed test data sets.
#[allow(dead_code)]
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Runs `blindlink ARGS...` in-process and returns its error message (with causes) if it failed.
#[allow(dead_code)]
pub fn blindlink(args: &[&str]) -> Result<(), String> {
    let argv = std::iter::once("blindlink").chain(args.iter().copied());
    blindlink_cli::run_from(argv).map_err(|e| format!("{e:#}"))
}
