//! The 24/7 helpdesk API (DESIGN "Helpdesk API", CONTRACT; R-LIFE-1, R-LIFE-2, R-LIFE-3):
//! look-up of holders and means, suspension, revocation and reactivation with caller
//! verification and `Idempotency-Key`, and its OpenAPI document.

pub mod console;
pub mod http;
pub mod lookup;
pub mod openapi;
pub mod service;
