//! The one integration-test binary (STYLE §1.8): shared helpers in `support`, one module
//! per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod audit;
mod audit_catalogue;
mod cli;
mod client_auth;
mod fido;
mod fido_browser;
mod helpdesk;
mod hsm;
mod layering;
mod lifecycle;
mod loa_claims;
mod login_api;
mod oidc_code_flow;
mod oidc_negative;
mod ops;
mod par;
mod scale;
mod separation;
mod smartcard;
mod store_contract;
mod supervision;
mod support;
mod tls;
mod totp;
