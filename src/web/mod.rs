//! The server shell: router, TLS (rustls), security headers and limits (R-SEC-1,
//! R-SEC-5), problem+json, static pages.

pub mod extract;
pub mod i18n;
pub mod layers;
pub mod limits;
pub mod login;
pub mod metrics;
pub mod middleware;
pub mod oauth;
pub mod pages;
pub mod problem;
pub mod proxy;
pub mod router;
pub mod serve;
pub mod server;
pub mod state;
pub mod tls;

pub use problem::Problem;
