//! The OpenID Connect protocol engine (DESIGN "OIDC"): one file per endpoint or grant.
//! Protocol code parses requests into types, checks PKCE, client authentication and
//! redirect rules, and signs through the HSM port; only `http.rs` knows axum.

pub mod authorize;
pub mod client_auth;
pub mod code;
pub mod discovery;
pub mod dpop;
pub mod eidas;
pub mod error;
pub mod grant;
pub mod http;
pub mod id_token;
pub mod introspect;
pub mod jar;
pub mod jws;
pub mod logout;
pub mod operator_token;
pub mod par;
pub mod params;
pub mod pkce;
pub mod profile;
pub mod state;
pub mod subject;
pub mod token;
pub mod userinfo;
