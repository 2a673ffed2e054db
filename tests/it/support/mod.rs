//! Shared test fixtures.
pub mod softhsm;
