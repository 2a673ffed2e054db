//! Operator functions. For now: `eidgate import` (DESIGN "Admin API and CLI").

pub mod import;
