//! Shared helpers for the integration tests.

pub mod db;
pub mod operators;
pub mod server;
pub mod softhsm;
