//! End-to-end tests: one test binary, one module per capability. Data sets live in
//! `tests/data/`.

mod disclosure;
mod encode;
mod hostile;
mod matching;
mod operations;
mod peers;
mod rejects;
mod service;
mod support;
mod synth;
