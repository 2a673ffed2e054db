//! # eidgate
//!
//! An OpenID Connect provider for multi-factor eID means at eIDAS levels of assurance.
//! Every key that matters lives in an HSM used through PKCS#11.
//!
//! # Layout
//! Data flows one way: **transport → services → ports → domain**; a file imports only its
//! own layer or lower ones.
//!
//! | module | layer | role |
//! | --- | --- | --- |
//! | [`domain`] | domain | pure types and rules (ids, LoA, secrets, clients, persons, means); no I/O |
//! | [`audit`] | services | hash-chained audit events (the record in `audit/mod.rs` is domain), sinks, checkpoints, export |
//! | [`hsm`] | ports | the only module that touches PKCS#11 (`cryptoki`): signing keys, JWKS, token init |
//! | [`store`] | ports | durable state through sqlx (SQLite default, PostgreSQL) |
//! | [`ephemeral`] | ports | short-lived state: flows, codes, access tokens, rate counters |
//! | [`clock`] | ports | the clock: services read `now` here, domain rules take it as an argument |
//! | [`random`] | ports | the CSPRNG behind every secret, code, challenge and id |
//! | [`config`] | ports | the typed configuration (TOML file + `EIDGATE_*`), read by every layer above the domain |
//! | [`authn`] | services | login ceremonies (password, TOTP, FIDO2), SSO session, throttling, the login API |
//! | [`oidc`] | services | the OpenID Connect protocol engine and its HTTP endpoints |
//! | [`smartcard`] | services | the smartcard means: Web eID tokens, the issuing CA in the HSM, CRL, OCSP |
//! | [`lifecycle`] | services | the eID means lifecycle: application, approval, activation, suspension, revocation, expiry |
//! | [`helpdesk`] | services | the 24/7 helpdesk API: look-up, suspension and revocation with caller verification |
//! | [`admin`] | services | operators (authentication, roles), the registry, legal persons, the admin API, `import` |
//! | [`delivery`] | services | activation codes and revocation secrets to the holder: outbox, SMTP, webhook |
//! | [`backup`] | services | encrypted, authenticated backups (HSM `data-wrap` key) and restore |
//! | [`monitor`] | services | availability per service and incident detection |
//! | [`supervision`] | services | incident notification, the annual report to the supervisor, compliance, LoA caps |
//! | [`jobs`] | services | the periodic jobs: audit shipping, checkpoints, retention, reports, expiry, availability |
//! | [`web`] | transport | server shell: router, `serve`, TLS, limits, extractors, problem+json |
//! | [`app`] | transport | composition root: builds ports and each feature's narrow state (`Oidc`, `Authn`, `Lifecycle`, `Cards`, `Admin`, `Jobs`) |
//! | [`cli`] | transport | the `eidgate` command line |
//!
//! Every `*/http.rs` is transport. Each service takes its feature's narrow state (its
//! `state.rs`: only the ports it uses), which handlers extract with axum's `FromRef`
//! ([`web::state`]); the composition root's `App` never reaches a service. Rules checked by `tests/it/layering.rs`: the direction
//! above, no import cycle, `crate::app` named only in transport files, no `*/http.rs`
//! importing another feature's, services never build HTTP answers, the domain uses only
//! allowlisted crates, this table lists every module; `axum`/`tower` appear only in
//! transport files, `sqlx` only in `store/`, `cryptoki` only in `hsm/`.

/// mimalloc instead of the system allocator, for every binary built on this library (the
/// server, the CLI, tests and benches alike). A token exchange makes a few hundred small
/// allocations across worker threads; glibc malloc took a third of the request path's
/// CPU there (perf, `benches/token_vs_hsm.rs`). Allocations of the PKCS#11 module (C/C++)
/// are not affected. Built without transparent huge pages (feature `no_thp`): with them, each
/// region mimalloc touched counted 2 MiB resident, 20 MB of an idle server (issue 22).
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
