//! Placeholder: the synth benchmarks are being written.

fn main() {}
