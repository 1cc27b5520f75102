//! Criterion benchmarks live in `benches/benches/`; this library is empty so the package builds.
//! Run them with `cargo bench -p blindlink-benches --bench NAME`; the figures and the commands
//! that made them are in `papers/benchmarks.md`.
#![forbid(unsafe_code)]
