//! Atomic output files: everything the CLI writes goes to a temporary file in the destination's
//! directory and is renamed into place only when complete, so a failed run leaves no
//! half-written output.
//!
//! Output files are readable and writable by their owner only (mode 0600 on Unix, the
//! temporary file's mode, kept by the rename): CLKs, link files, rejects and ledgers are
//! derived from personal data. `chmod` them to share.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A file being written; it appears at its destination only after [`AtomicFile::commit`].
/// Dropping it without committing removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    destination: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `destination`.
    ///
    /// # Errors
    /// The destination's directory does not exist or is not writable.
    pub fn create(destination: &Path) -> anyhow::Result<Self> {
        let dir = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".blindlink-")
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create an output file in {}", dir.display()))?;
        Ok(Self {
            destination: destination.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, temp),
        })
    }

    /// Flushes, syncs and renames the file into place.
    ///
    /// # Errors
    /// The write, sync or rename failed; the destination is then left untouched.
    pub fn commit(self) -> anyhow::Result<()> {
        let destination = self.destination;
        let temp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", destination.display()))?;
        temp.as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", destination.display()))?;
        temp.persist(&destination)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", destination.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Seeking flushes the buffer first (a binary CLK file's header is filled in at the end).
impl std::io::Seek for AtomicFile {
    fn seek(&mut self, position: std::io::SeekFrom) -> std::io::Result<u64> {
        self.writer.seek(position)
    }
}

/// Writes a whole file atomically from a closure.
///
/// # Errors
/// The closure's error, or a failed write; either way nothing appears at `destination`.
pub fn write_atomically(
    destination: &Path,
    fill: impl FnOnce(&mut AtomicFile) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut file = AtomicFile::create(destination)?;
    fill(&mut file)?;
    file.commit()
}
