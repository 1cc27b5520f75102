//! End-to-end tests of encode (being written).
