//! `blindlink keygen`: writes a fresh linkage secret.
//!
//! The file holds 64 lowercase hex digits (32 random bytes from the operating system's RNG)
//! and nothing else, no trailing newline: the encoder uses the file's bytes exactly as they
//! are as the secret, so the text must not change when copied. Copy the file as a file (scp,
//! a vault), not through an editor that adds a newline; if it does change, the handshake's
//! key-check reports "linkage key differs" before anything is linked. The file is created
//! with mode 0600 and an existing file is never overwritten.
//!
//! Reading a key file ([`read_key_file`], used by `encode`, `link`, `serve` and `demo`):
//! - a key shorter than [`MIN_SECRET_BYTES`] (16) bytes is refused, since anyone who guesses it
//!   can run dictionary attacks on every CLK and match key; set the environment variable
//!   `BLINDLINK_ALLOW_WEAK_KEY=1` to use one anyway (tests, experiments);
//! - a key file readable or writable by group or others (on unix: any of the mode bits 077) is
//!   used, with a warning on stderr naming the file, its mode and the fix (`chmod 600`): the
//!   refusal would break keys checked out of version control for examples, while the warning
//!   still tells an operator whose production key is exposed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use blindlink_encoding::MIN_SECRET_BYTES;
use zeroize::Zeroizing;

/// The environment variable that lets a key file shorter than [`MIN_SECRET_BYTES`] be used.
pub const ALLOW_WEAK_KEY_VAR: &str = "BLINDLINK_ALLOW_WEAK_KEY";

/// Reads a linkage key file, refusing a key shorter than [`MIN_SECRET_BYTES`] unless
/// `BLINDLINK_ALLOW_WEAK_KEY=1`, and printing a warning on stderr if the file is readable by
/// group or others.
///
/// # Errors
/// The file cannot be read, is empty, or (without the opt-out) is too short; the message names
/// the file.
///
/// # Security
/// The key's bytes are returned zeroizing and never appear in a message.
pub fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?,
    );
    let allow_weak = std::env::var_os(ALLOW_WEAK_KEY_VAR).is_some_and(|v| v == "1");
    check_key_length(path, bytes.len(), allow_weak)?;
    let mode = file_mode(path);
    if let Some(warning) = permissive_mode_warning(path, mode) {
        eprintln!("{warning}");
    }
    Ok(bytes)
}

/// Refuses a key of `len` bytes shorter than [`MIN_SECRET_BYTES`] unless `allow_weak`.
///
/// # Errors
/// The key is empty, or short and not allowed.
pub fn check_key_length(path: &Path, len: usize, allow_weak: bool) -> anyhow::Result<()> {
    if len == 0 {
        anyhow::bail!("key file {} is empty", path.display());
    }
    if len < MIN_SECRET_BYTES && !allow_weak {
        anyhow::bail!(
            "key file {} holds {len} bytes; a linkage key needs at least {MIN_SECRET_BYTES} \
             (make one with `blindlink keygen`, or set {ALLOW_WEAK_KEY_VAR}=1 to use a weak key \
             for tests)",
            path.display()
        );
    }
    Ok(())
}

/// The warning for a key file whose unix `mode` lets group or others read or write it.
#[must_use]
pub fn permissive_mode_warning(path: &Path, mode: Option<u32>) -> Option<String> {
    let mode = mode? & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "warning: key file {} is accessible by group or others (mode {mode:04o}); anyone \
             who reads it can attack every CLK made with it: chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Option<u32> {
    None
}

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
    let mut temp = crate::output::new_partial(dir)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused_unless_allowed() {
        let path = Path::new("k.key");
        assert_eq!(
            check_key_length(path, 15, false).unwrap_err().to_string(),
            "key file k.key holds 15 bytes; a linkage key needs at least 16 (make one with \
             `blindlink keygen`, or set BLINDLINK_ALLOW_WEAK_KEY=1 to use a weak key for tests)"
        );
        assert!(check_key_length(path, 16, false).is_ok());
        assert!(check_key_length(path, 1, true).is_ok());
        assert_eq!(
            check_key_length(path, 0, true).unwrap_err().to_string(),
            "key file k.key is empty"
        );
    }

    #[test]
    fn group_or_world_access_is_warned_about() {
        let path = Path::new("k.key");
        assert_eq!(permissive_mode_warning(path, Some(0o100600)), None);
        assert_eq!(permissive_mode_warning(path, Some(0o400)), None);
        assert_eq!(permissive_mode_warning(path, None), None);
        assert_eq!(
            permissive_mode_warning(path, Some(0o100644)).as_deref(),
            Some(
                "warning: key file k.key is accessible by group or others (mode 0644); anyone \
                 who reads it can attack every CLK made with it: chmod 600 k.key"
            )
        );
        assert!(permissive_mode_warning(path, Some(0o602)).is_some());
    }
}
