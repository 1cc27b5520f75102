//! Placeholder: the matching benchmarks are being written.

fn main() {}
