//! The route walk of issue 17 ("no gaps"): every route that issues a code or token or
//! changes state is driven live against a real test server, and the records it appended
//! must contain its audit event. The catalogue walk (`audit_catalogue`) drives the core
//! routes; the files here drive the rest, one feature per file. Each file declares the
//! routes it walks in `ROUTES` and its test fails unless it drove exactly those, each with
//! its record; `audit_routes` then requires every state-changing route in `src/` to be
//! walked somewhere or classified.

use std::collections::BTreeMap;

use crate::support::server::TestServer;

mod account;
mod console;
mod fido;
mod legal;
mod smartcard;
mod supervision;

/// The routes the walks in this directory drive (each file's test proves its own list).
pub(crate) fn routes() -> Vec<&'static str> {
    [
        account::ROUTES,
        console::ROUTES,
        fido::ROUTES,
        legal::ROUTES,
        smartcard::ROUTES,
        supervision::ROUTES,
    ]
    .concat()
}

/// Reads what each action appended to the audit log.
pub(crate) struct Walk<'a> {
    server: &'a TestServer,
    after: i64,
    /// Events proven so far → the action that wrote them.
    pub(crate) proven: BTreeMap<&'static str, &'static str>,
    /// State-changing routes driven so far (`METHOD /path`) → the action that did.
    pub(crate) walked: BTreeMap<&'static str, &'static str>,
}

impl<'a> Walk<'a> {
    /// A walk over `server`, from the current head of its log.
    pub(crate) async fn new(server: &'a TestServer) -> Walk<'a> {
        let (after, _) = server.app.store.audit_head().await.unwrap();
        Walk {
            server,
            after,
            proven: BTreeMap::new(),
            walked: BTreeMap::new(),
        }
    }

    /// From the very first record (the catalogue walk reads the start-up records too).
    pub(crate) fn from_start(server: &'a TestServer) -> Walk<'a> {
        Walk {
            server,
            after: 0,
            proven: BTreeMap::new(),
            walked: BTreeMap::new(),
        }
    }

    /// Reads what `action` (through `routes`) appended and checks it contains `expected`.
    pub(crate) async fn check(&mut self, action: &'static str, routes: &[&'static str], expected: &[&'static str]) {
        assert!(!expected.is_empty(), "{action}: every walked route must write a record");
        for route in routes {
            self.walked.entry(route).or_insert(action);
        }
        let records = self.server.app.store.audit_after(self.after, 100_000).await.unwrap();
        if let Some(last) = records.last() {
            self.after = last.seq;
        }
        let emitted: Vec<&str> = records.iter().map(|r| r.event.event_type.as_str()).collect();
        // Whatever a route writes is catalogued, so the sink and the reports know it.
        for event in &emitted {
            assert!(
                eidgate::audit::catalogue::find(event).is_some(),
                "{action} recorded {event}, which is not in the catalogue"
            );
        }
        for event in expected {
            assert!(
                emitted.contains(event),
                "{action} should record {event}; it recorded {emitted:?}"
            );
            self.proven.insert(event, action);
        }
    }

    /// `action` (through a route classified in `audit_routes::NO_RECORD`) appended nothing.
    pub(crate) async fn nothing(&mut self, action: &str) {
        let records = self.server.app.store.audit_after(self.after, 100).await.unwrap();
        assert!(
            records.is_empty(),
            "{action} should write no record; it wrote {records:?}"
        );
    }

    /// Skips what was appended so far (set-up that is not under test).
    pub(crate) async fn skip(&mut self) {
        (self.after, _) = self.server.app.store.audit_head().await.unwrap();
    }

    /// The walk drove exactly `declared`.
    pub(crate) fn finish(&self, declared: &[&str]) {
        let walked: Vec<&str> = self.walked.keys().copied().collect();
        let mut declared = declared.to_vec();
        declared.sort_unstable();
        assert_eq!(walked, declared, "the routes walked differ from the routes declared");
    }
}

/// `POST /authn/flows/{flow}/{name}` with `body` in `browser`.
pub(crate) async fn flow_step(
    server: &TestServer,
    browser: &reqwest::Client,
    flow: &str,
    name: &str,
    body: serde_json::Value,
) -> crate::support::server::Answer {
    let r = browser
        .post(server.at(&format!("/authn/flows/{flow}/{name}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::support::server::Answer::from(r).await
}
