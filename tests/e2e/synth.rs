//! End-to-end tests of synth (being written).
