//! Shared helpers for the host test suite.
