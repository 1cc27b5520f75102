//! Atomic output files: everything the CLI writes goes to a temporary file in the destination's
//! directory and is renamed into place only when complete, so a failed run leaves no
//! half-written output.
//!
//! Output files are readable and writable by their owner only (mode 0600 on Unix, the
//! temporary file's mode, kept by the rename): CLKs, link files, rejects and ledgers are
//! derived from personal data. `chmod` them to share.
//!
//! A temporary file is named `.blindlink-<pid>-<random>.partial` and held under an advisory
//! lock while it is written. A run killed before it could clean up leaves such files behind:
//! the next [`AtomicFile::create`] in that directory removes every one whose writer is gone
//! (not locked, and its process no longer running), never a live one of a concurrent run.
//! Commands that run long (`encode`) also remove their own on SIGINT and SIGTERM
//! ([`remove_partial_files_on_signal`]) before exiting with status 130 or 143.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;

/// How temporary output files start; the writer's process id follows.
pub const PARTIAL_PREFIX: &str = ".blindlink-";
/// How temporary output files end.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// The temporary files this process is writing, for the signal handler to remove.
static LIVE_PARTIALS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Keeps a temporary file's path in [`LIVE_PARTIALS`] while it exists.
#[derive(Debug)]
struct Registration(PathBuf);

impl Registration {
    fn new(path: &Path) -> Self {
        LIVE_PARTIALS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_path_buf());
        Self(path.to_path_buf())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        LIVE_PARTIALS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// A new temporary file in `dir`, named for this process, locked while open, registered for
/// removal on a signal; stale ones of dead runs in `dir` are removed first.
pub(crate) fn new_partial(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    remove_stale_partials(dir);
    let temp = tempfile::Builder::new()
        .prefix(&format!("{PARTIAL_PREFIX}{}-", std::process::id()))
        .suffix(PARTIAL_SUFFIX)
        .tempfile_in(dir)?;
    // Marks the file as being written; released when it is closed (or the process dies).
    let _ = temp.as_file().try_lock();
    Ok(temp)
}

/// Removes the temporary files in `dir` left by runs that died before cleaning up: named
/// `.blindlink-<pid>-*.partial` for a process that is no longer running and not locked by
/// anyone. Returns how many were removed; errors (an unreadable directory) count as none.
pub fn remove_stale_partials(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix(PARTIAL_PREFIX)
            .and_then(|rest| rest.strip_suffix(PARTIAL_SUFFIX))
        else {
            continue;
        };
        let pid = middle
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if pid == Some(own) || pid.is_some_and(process_is_running) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        // A live writer (of an older naming, or a process id reused) holds the lock.
        if file.try_lock().is_err() {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(target_os = "linux")]
fn process_is_running(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_is_running(_pid: u32) -> bool {
    // Without /proc, only the lock tells: treat the process as gone.
    false
}

/// Removes this process's temporary output files and exits (130 on SIGINT, 143 on SIGTERM)
/// when one of those signals arrives, until the returned guard is dropped.
///
/// # Errors
/// The signal handlers cannot be installed.
pub fn remove_partial_files_on_signal() -> anyhow::Result<SignalCleanup> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (mut interrupt, mut terminate) =
                        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                            (Ok(i), Ok(t)) => (i, t),
                            (Err(e), _) | (_, Err(e)) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                    let _ = ready_tx.send(Ok(()));
                    let status = tokio::select! {
                        _ = stop_rx => return,
                        _ = interrupt.recv() => 130,
                        _ = terminate.recv() => 143,
                    };
                    let removed = remove_live_partials();
                    eprintln!(
                        "interrupted: removed {removed} unfinished output file(s); nothing was written"
                    );
                    std::process::exit(status);
                }
                #[cfg(not(unix))]
                {
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = tokio::signal::ctrl_c() => {
                            remove_live_partials();
                            std::process::exit(130);
                        }
                    }
                }
            });
        })
        .context("cannot start the signal handler")?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e).context("cannot install the signal handlers"),
        Err(_) => anyhow::bail!("the signal handler stopped before it was ready"),
    }
    Ok(SignalCleanup {
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

fn remove_live_partials() -> usize {
    let live = LIVE_PARTIALS.lock().unwrap_or_else(PoisonError::into_inner);
    live.iter()
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count()
}

/// Stops the signal cleanup of [`remove_partial_files_on_signal`] when dropped.
#[derive(Debug)]
pub struct SignalCleanup {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SignalCleanup {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A file being written; it appears at its destination only after [`AtomicFile::commit`].
/// Dropping it without committing removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    destination: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
    _registration: Registration,
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
        let temp = new_partial(dir)
            .with_context(|| format!("cannot create an output file in {}", dir.display()))?;
        let registration = Registration::new(temp.path());
        Ok(Self {
            destination: destination.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, temp),
            _registration: registration,
        })
    }

    /// Flushes, syncs and renames the file into place.
    ///
    /// # Errors
    /// The write, sync or rename failed; the destination is then left untouched.
    pub fn commit(self) -> anyhow::Result<()> {
        let Self {
            destination,
            writer,
            _registration,
        } = self;
        let temp = writer
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
