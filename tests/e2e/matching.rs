//! End-to-end tests of matching (being written).
