//! The `blindlink` command, built inside the test crate so the end-to-end tests can run it as
//! a process of its own (for signals): `env!("CARGO_BIN_EXE_blindlink-e2e")`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    match blindlink_cli::run_from(std::env::args_os()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
