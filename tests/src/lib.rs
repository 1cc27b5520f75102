//! The end-to-end tests are one test binary, `tests/e2e/main.rs`; this library is empty.
#![forbid(unsafe_code)]
