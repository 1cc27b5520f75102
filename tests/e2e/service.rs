//! End-to-end tests of service (being written).
