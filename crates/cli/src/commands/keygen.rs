//! `blindlink keygen`: writes a fresh linkage secret.
//!
//! The file holds 64 lowercase hex digits (32 random bytes from the operating system's RNG)
//! and nothing else, no trailing newline: the encoder uses the file's bytes exactly as they
//! are as the secret, so the text must not change when copied. Copy the file as a file (scp,
//! a vault), not through an editor that adds a newline; if it does change, the handshake's
//! key-check reports "linkage key differs" before anything is linked. The file is created
//! with mode 0600 and an existing file is never overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use zeroize::Zeroizing;

/// Arguments of `blindlink keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the key (must not exist yet).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes a new key to `args.out`.
///
/// # Errors
/// The file exists, the OS RNG failed, or the file cannot be written.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut()).map_err(|e| {
        anyhow::anyhow!("the operating system's random number generator failed: {e}")
    })?;
    let text = Zeroizing::new(hex::encode(secret.as_ref()));
    write_new_private_file(&args.out, text.as_bytes(), "a linkage key")?;
    eprintln!("wrote a new 256-bit linkage key to {}", args.out.display());
    Ok(())
}

/// Writes `contents` to a new file at `path` with mode 0600 (on unix), atomically (temporary
/// file + rename that fails if `path` appeared meanwhile), never replacing an existing file.
///
/// # Errors
/// `path` exists, or the write fails.
pub(crate) fn write_new_private_file(
    path: &Path,
    contents: &[u8],
    what: &str,
) -> anyhow::Result<()> {
    let temp = stage_private_file(path, contents, what)?;
    persist_new(temp, path, what)
}

/// Writes `contents` to a temporary file (mode 0600) in `path`'s directory, refusing early if
/// `path` exists.
pub(crate) fn stage_private_file(
    path: &Path,
    contents: &[u8],
    what: &str,
) -> anyhow::Result<tempfile::NamedTempFile> {
    if path.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite {what}",
            path.display()
        );
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates files with mode 0600 on unix.
    let mut temp = tempfile::Builder::new()
        .prefix(".blindlink-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(temp)
}

/// Renames a staged file into place unless `path` exists.
pub(crate) fn persist_new(
    temp: tempfile::NamedTempFile,
    path: &Path,
    what: &str,
) -> anyhow::Result<()> {
    temp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; refusing to overwrite {what}",
                path.display()
            )
        } else {
            anyhow::Error::new(e.error).context(format!("cannot write {}", path.display()))
        }
    })?;
    Ok(())
}
