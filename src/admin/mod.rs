//! Operator functions: authentication of operators, the registry (persons, proofing,
//! operator roles), the admin API, and `eidgate import`.

pub mod assurance;
pub mod auth;
pub mod builtin;
pub mod http;
pub mod import;
mod import_legal;
mod import_means;
pub mod legal;
pub mod registry;
pub mod state;
