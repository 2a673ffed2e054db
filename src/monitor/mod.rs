//! Monitoring of the provider itself: availability per service (R-OPS-1) and incident
//! detection and classification (R-OPS-2).

pub mod availability;
pub mod metrics;
pub mod phases;
