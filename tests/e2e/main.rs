//! End-to-end tests: one test binary, one module per capability. Data sets live in
//! `tests/data/`.
// Test code throughout (helpers included, not only `#[test]` functions, which clippy.toml's
// allow-unwrap-in-tests covers): a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod deploy;
mod disclosure;
mod encode;
mod hostile;
mod matching;
mod operations;
mod peers;
mod postgres;
mod rejects;
mod service;
mod shard;
mod split;
mod support;
mod synth;
mod validate_fs;
