//! End-to-end tests: one test binary, one module per capability. Data sets live in
//! `tests/data/`.

mod support;
mod encode;
mod matching;
mod synth;
mod service;
