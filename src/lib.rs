//! # eidgate
//!
//! An OpenID Connect provider for multi-factor eID means at eIDAS levels of assurance.
//! Every key that matters lives in an HSM used through PKCS#11.
//!
//! # Layout
//! Data flows one way: **transport → services → domain → ports**.
//!
//! | module | role |
//! | --- | --- |
//! | [`domain`] | pure types and rules (ids, LoA, secrets, clients, persons, means); no I/O |
//! | [`hsm`] | the only module that touches PKCS#11 (`cryptoki`): signing keys, JWKS, token init |
//! | [`store`] | durable state through sqlx (SQLite default, PostgreSQL) |
//! | [`ephemeral`] | short-lived state: flows, codes, access tokens, rate counters |
//! | [`audit`] | hash-chained audit events (written with the change they record) |
//! | [`authn`] | login ceremonies (password for now) and the login API |
//! | [`oidc`] | the OpenID Connect protocol engine and its HTTP endpoints |
//! | [`smartcard`] | the smartcard means: Web eID tokens, the issuing CA in the HSM, CRL |
//! | [`admin`] | `import` of clients, persons and means |
//! | [`delivery`] | activation codes and revocation secrets to the holder: outbox, SMTP, webhook |
//! | [`backup`] | encrypted, authenticated backups (HSM `data-wrap` key) and restore |
//! | [`web`] | server shell: router, TLS, limits, problem+json |
//! | [`app`] | composition root: builds ports from config and serves |
//! | [`cli`] | the `eidgate` command line |
//!
//! Dependency rule (checked by `tests/it/layering.rs`): `domain` imports no I/O crate;
//! `axum`/`tower` appear only in `*/http.rs`, `web/` and `app.rs`; `sqlx` only in `store/`;
//! `cryptoki` only in `hsm/`.

/// mimalloc instead of the system allocator, for every binary built on this library (the
/// server, the CLI, tests and benches alike). A token exchange makes a few hundred small
/// allocations across worker threads; glibc malloc took a third of the request path's
/// CPU there (perf, `benches/token_vs_hsm.rs`). Allocations of the PKCS#11 module (C/C++)
/// are not affected.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admin;
pub mod app;
pub mod audit;
pub mod authn;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod ephemeral;
pub mod helpdesk;
pub mod hsm;
pub mod jobs;
pub mod lifecycle;
pub mod monitor;
pub mod oidc;
pub mod random;
pub mod smartcard;
pub mod store;
pub mod supervision;
pub mod web;
