//! Placeholder: the psi benchmarks are being written.

fn main() {}
