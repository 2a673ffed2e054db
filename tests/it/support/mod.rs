//! Shared helpers for the integration tests.

pub mod authenticator;
pub mod cdp;
pub mod db;
pub mod operators;
pub mod server;
pub mod softhsm;
