//! Placeholder: the encoding benchmarks are being written.

fn main() {}
