#![forbid(unsafe_code)]

use clap::Parser;

/// jemalloc, returning freed pages at once (`blindlink_cli::allocator`): the resident set of a
/// session follows its live heap, where glibc's per-thread arenas held 1.9 times as much at 1M records.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    // Before any thread starts, so that every arena returns freed pages at once. A refusal
    // only costs memory: said, not fatal.
    #[cfg(not(target_env = "msvc"))]
    if let Err(err) = blindlink_cli::allocator::return_freed_pages_at_once() {
        eprintln!("warning: {err:#}");
    }
    let cli = blindlink_cli::Cli::parse();
    match blindlink_cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
