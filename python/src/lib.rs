//! The native half of the `blindlink` Python package (`blindlink._native`): thin PyO3 wrappers
//! over the workspace crates. The Python half (`blindlink/__init__.py`) turns DataFrames and
//! arrays into the plain values these functions take and their results back into arrays.
//!
//! Design: every function runs the same code as the `blindlink` binary (the CLI's library for
//! encoding CSV, loading a party and running sessions; the library crates for the rest), so the
//! bytes, links and error messages are the CLI's. Long work runs with the interpreter detached
//! (`Python::detach`), so other Python threads run meanwhile (a test serves in one thread and
//! links in another). Errors are `BlindlinkError` subclasses named after what was wrong: the
//! configuration (schema, secret, party config), the input (rows, CLKs, arguments) or the
//! session (peer, network, protocol).
//!
//! Everything is behind the `python` feature (which `pyproject.toml` turns on for maturin): the
//! crate is a member of the root workspace, where `cargo test --workspace` builds it without
//! pyo3 or a Python interpreter.
#![cfg(feature = "python")]

mod encode;
mod errors;
mod evaluate;
mod leakage;
mod matching;
mod session;
mod synth;

use pyo3::prelude::*;

/// The module `blindlink._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(synth::synth, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_file, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_columns, m)?)?;
    m.add_function(wrap_pyfunction!(matching::read_clk_file, m)?)?;
    m.add_function(wrap_pyfunction!(matching::match_clks, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(session::link, m)?)?;
    m.add_function(wrap_pyfunction!(session::serve, m)?)?;
    leakage::register(m)?;
    Ok(())
}
