//! Shared helpers for the integration tests.

pub mod authenticator;
pub mod cdp;
pub mod db;
pub mod operators;
pub mod problem;
pub mod server;
pub mod softhsm;
