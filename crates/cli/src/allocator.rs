//! The memory allocator of the `blindlink` binary: jemalloc, told to give freed pages back to
//! the system at once.
//!
//! A session frees large buffers on one thread (a PSI message, a sorted copy of the peer's
//! points) and allocates the next ones on another (tokio's workers, rayon's pool, the
//! blocking threads of the drivers' steps). glibc's malloc keeps such memory in per-thread
//! arenas for reuse, and it counts in the resident set: at 1M records a `serve` process held
//! 1.9 times what it holds on jemalloc (papers/scale.md §2, "The allocator"). jemalloc with its
//! decay times at 0 ms returns a freed run of pages as soon as it is free, so the resident
//! set follows the live heap.
//!
//! The binary installs it (`src/main.rs`); the library's tests and the in-process end-to-end
//! tests keep the system allocator.

/// The decay settings set to 0 ms: the defaults of the arenas made from now on (one per
/// thread, up to four per core, made when a thread first allocates) and those of arena 0,
/// the only one that exists before the first thread starts.
const DECAY_KEYS: [&str; 4] = [
    "arenas.dirty_decay_ms\0",
    "arenas.muzzy_decay_ms\0",
    "arena.0.dirty_decay_ms\0",
    "arena.0.muzzy_decay_ms\0",
];

/// Makes jemalloc return pages to the system as soon as they are free: dirty and muzzy decay
/// 0 ms for arena 0 and as the default of every arena made later. Call it first in `main`, before any thread starts, so
/// that every arena gets the setting.
///
/// # Errors
/// jemalloc refuses a setting (not expected: the keys exist in every jemalloc 5 build); the
/// binary then runs with jemalloc's default decay (10 s), using more memory, not less
/// correctly.
pub fn return_freed_pages_at_once() -> anyhow::Result<()> {
    use tikv_jemalloc_ctl::{Access, AsName};
    for key in DECAY_KEYS {
        key.as_bytes().name().write(0_isize).map_err(|e| {
            anyhow::anyhow!(
                "cannot set the allocator's {}: {e}",
                key.trim_end_matches('\0')
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tikv_jemalloc_ctl::{Access, AsName};

    use super::*;

    /// `key` reads `expected` milliseconds.
    fn check(key: &str, expected: isize) {
        let value: isize = key.as_bytes().name().read().unwrap();
        assert_eq!(value, expected, "{key}");
    }

    #[test]
    fn every_decay_is_zero_after_the_call_and_for_arenas_made_later() {
        return_freed_pages_at_once().unwrap();
        for key in DECAY_KEYS {
            check(key, 0);
        }
        // An arena made after the call takes the new defaults.
        let arena: u32 = "arenas.create\0".as_bytes().name().read().unwrap();
        for kind in ["dirty", "muzzy"] {
            check(&format!("arena.{arena}.{kind}_decay_ms\0"), 0);
        }
    }
}
