//! Shared helpers for the integration tests.

pub mod db;
pub mod server;
pub mod softhsm;
