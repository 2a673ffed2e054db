//! The external sink and the alert rules (R-LOG-4, R-SEC-6).
//!
//! A tailer reads the chain after its cursor (`audit_cursors.sink`) and
//! - writes every failed authentication, access denial, helpdesk verification failure,
//!   clock jump, report and alert as one JSON line to an append-only file outside the
//!   database (`audit.sink_path`, synced per batch) and, when `audit.syslog_udp` is set,
//!   as RFC 5424 datagrams to a syslog collector (best effort; the file is the record);
//! - runs the alert rules over the failures it reads: brute force on one account, one IP
//!   across many accounts, repeated helpdesk verification failures, an operator exceeding
//!   their role, a FIDO counter regression, the revocation status of an external CA's
//!   card that could not be established (OCSP/CRL down, stale or unverifiable: DESIGN
//!   "When a dependency fails"). An alert is appended to the chain as
//!   `alert.raised` (so it is itself tamper-evident); the tailer then ships it to the sink
//!   and POSTs it to `audit.webhook_url`.
//!
//! Reading the chain, rather than hooking every emitter, means no failure can bypass the
//! sink: whatever reached the log reaches the sink, in order. Window state is in memory;
//! after a restart the rules start with empty windows.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{catalogue, AuditEvent, AuditRecord, Checkpoint};
use crate::domain::UnixTime;
use crate::store::{Store, StoreError};

const CURSOR: &str = "sink";
const PAGE: i64 = 500;

/// Thresholds of the alert rules.
#[derive(Clone, Debug)]
pub struct AlertRules {
    /// Sliding window, seconds.
    pub window: i64,
    /// Failed logins on one account within the window that raise `brute_force_account`.
    pub account_failures: usize,
    /// Distinct accounts failing from one IP within the window (`ip_many_accounts`).
    pub ip_accounts: usize,
    /// Failed helpdesk verifications by one operator within the window.
    pub helpdesk_failures: usize,
}

/// Errors of the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink file could not be written.
    #[error("audit sink {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Default)]
struct Windows {
    by_account: HashMap<String, VecDeque<UnixTime>>,
    by_ip: HashMap<String, VecDeque<(UnixTime, String)>>,
    by_helpdesk: HashMap<String, VecDeque<UnixTime>>,
    /// (rule, key) → time of the last alert, so one attack raises one alert per window.
    alerted: HashMap<(String, String), UnixTime>,
}

/// The tailer: sink file, webhook, rules and their windows.
pub struct Shipper {
    sink_path: PathBuf,
    syslog: Option<std::net::SocketAddr>,
    webhook: Option<url::Url>,
    rules: AlertRules,
    windows: tokio::sync::Mutex<Windows>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("sink_path", &self.sink_path)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Alerts that [`Shipper::raise`] shipped itself when it raised them.
pub const RAISED_DIRECTLY: &[&str] = &["audit_tampering"];

fn raised_directly(r: &AuditRecord) -> bool {
    r.event.event_type == catalogue::ALERT_RAISED
        && r.event.data["rule"]
            .as_str()
            .is_some_and(|rule| RAISED_DIRECTLY.contains(&rule))
}

/// Whether a record goes to the external sink.
pub fn shipped(event_type: &str) -> bool {
    catalogue::find(event_type).is_some_and(|e| e.external)
}

impl Shipper {
    /// A tailer writing to `sink_path` and, when set, POSTing alerts to `webhook`.
    pub fn new(sink_path: PathBuf, webhook: Option<url::Url>, rules: AlertRules) -> Self {
        Self {
            sink_path,
            syslog: None,
            webhook,
            rules,
            windows: tokio::sync::Mutex::new(Windows::default()),
        }
    }

    /// Also sends every sink line to a syslog collector (RFC 5424 over UDP).
    pub fn with_syslog(mut self, collector: Option<std::net::SocketAddr>) -> Self {
        self.syslog = collector;
        self
    }

    /// The sink file.
    pub fn sink_path(&self) -> &std::path::Path {
        &self.sink_path
    }

    /// Ships everything appended since the last call and runs the rules; alerts raised on
    /// the way are appended to the chain and shipped in the same call. Returns how many
    /// lines were written. Calls are serialised (the windows' lock).
    pub async fn ship_pending(&self, store: &dyn Store) -> Result<usize, SinkError> {
        let mut windows = self.windows.lock().await;
        let mut cursor = store.audit_cursor(CURSOR).await?;
        let mut written = 0;
        loop {
            let page = store.audit_after(cursor, PAGE).await?;
            let Some(last) = page.last() else { break };
            let last_seq = last.seq;
            let mut lines = Vec::new();
            let mut alerts = Vec::new();
            for record in page.iter().filter(|r| !raised_directly(r)) {
                if shipped(&record.event.event_type) {
                    lines.push(sink_line(record));
                }
                alerts.extend(self.evaluate(&mut windows, record));
            }
            self.write_lines(&lines)?;
            self.send_syslog(&lines).await;
            written += lines.len();
            for record in page
                .iter()
                .filter(|r| r.event.event_type == catalogue::ALERT_RAISED && !raised_directly(r))
            {
                self.post_webhook(&sink_line(record)).await;
            }
            for alert in alerts {
                store.append(alert).await?;
            }
            store.set_audit_cursor(CURSOR, last_seq).await?;
            cursor = last_seq;
        }
        Ok(written)
    }

    /// Writes a signed checkpoint or anchor to the sink file (synced) and the syslog
    /// collector: the external witness of the chain ([`super::witness`]).
    pub async fn witness(&self, checkpoint: &Checkpoint) -> Result<(), SinkError> {
        let lines = [super::witness::line(checkpoint)];
        self.write_lines(&lines)?;
        self.send_syslog(&lines).await;
        Ok(())
    }

    /// Raises `rule` at once (R-SEC-6): appends `alert.raised` to the chain and ships it
    /// to the sink and the webhook now. One alert per rule and key within the window.
    pub async fn raise(
        &self,
        store: &dyn Store,
        rule: &str,
        key: &str,
        now: UnixTime,
        data: serde_json::Value,
    ) -> Result<(), SinkError> {
        {
            let mut windows = self.windows.lock().await;
            let slot = (rule.to_owned(), key.to_owned());
            if windows
                .alerted
                .get(&slot)
                .is_some_and(|at| *at > now - self.rules.window)
            {
                return Ok(());
            }
            windows.alerted.insert(slot, now);
        }
        let mut body = json!({"rule": rule, "key": key, "count": 1, "window_seconds": self.rules.window});
        if let (Some(obj), Some(extra)) = (body.as_object_mut(), data.as_object()) {
            obj.extend(extra.clone());
        }
        let seq = store
            .append(AuditEvent::new(
                catalogue::ALERT_RAISED,
                "system",
                format!("alert:{rule}"),
                body,
            ))
            .await?;
        // Straight to the sink and the webhook, not through the tailer's cursor: the
        // cursor is in the database the alert is about.
        let record = store.audit_after(seq - 1, 1).await?;
        let lines: Vec<serde_json::Value> = record.iter().map(sink_line).collect();
        self.write_lines(&lines)?;
        self.send_syslog(&lines).await;
        for line in &lines {
            self.post_webhook(line).await;
        }
        Ok(())
    }

    fn write_lines(&self, lines: &[serde_json::Value]) -> Result<(), SinkError> {
        if lines.is_empty() {
            return Ok(());
        }
        let io = |source| SinkError::Io {
            path: self.sink_path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.sink_path)
            .map_err(io)?;
        let mut buf = Vec::new();
        for line in lines {
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
        }
        file.write_all(&buf).map_err(io)?;
        file.sync_data().map_err(io)
    }

    /// Best effort: the file is the sink of record; a lost datagram is logged.
    async fn send_syslog(&self, lines: &[serde_json::Value]) {
        let Some(collector) = self.syslog else { return };
        if lines.is_empty() {
            return;
        }
        let bind: std::net::SocketAddr = if collector.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = match tokio::net::UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "syslog socket");
                return;
            }
        };
        for line in lines {
            if let Err(e) = socket.send_to(syslog_message(line).as_bytes(), collector).await {
                tracing::warn!(error = %e, "syslog send failed");
            }
        }
    }

    /// Alerts `record` completes, as events to append.
    fn evaluate(&self, w: &mut Windows, record: &AuditRecord) -> Vec<AuditEvent> {
        let event = &record.event;
        let now = record.time;
        let horizon = now - self.rules.window;
        let mut raised = Vec::new();
        let mut raise = |w: &mut Windows, rule: &str, key: String, count: usize| {
            let slot = (rule.to_owned(), key.clone());
            if w.alerted.get(&slot).is_some_and(|at| *at > horizon) {
                return;
            }
            w.alerted.insert(slot, now);
            raised.push(AuditEvent::new(
                catalogue::ALERT_RAISED,
                "system",
                format!("alert:{rule}"),
                json!({"rule": rule, "key": key, "count": count, "window_seconds": self.rules.window,
                       "trigger_seq": record.seq}),
            ));
        };
        match event.event_type.as_str() {
            catalogue::LOGIN_FAILURE => {
                let account = event
                    .data
                    .get("account")
                    .and_then(|a| a.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| event.subject.clone());
                let times = w.by_account.entry(account.clone()).or_default();
                times.push_back(now);
                times.retain(|t| *t > horizon);
                let count = times.len();
                if count >= self.rules.account_failures {
                    raise(w, "brute_force_account", account.clone(), count);
                }
                // The card was refused because its CA's OCSP responder or CRL gave no
                // verifiable, fresh answer: an outage of an external dependency.
                if event.data.get("reason").and_then(|r| r.as_str()) == Some("revocation_status_unknown") {
                    raise(w, "revocation_status_unavailable", "external_ca".to_owned(), 1);
                }
                if let Some(ip) = event.data.get("ip").and_then(|i| i.as_str()) {
                    // An IPv6 client counts by its /64 (issue 19).
                    let ip = crate::authn::throttle::address_block_of(ip);
                    let ip = ip.as_str();
                    let seen = w.by_ip.entry(ip.to_owned()).or_default();
                    seen.push_back((now, account));
                    seen.retain(|(t, _)| *t > horizon);
                    let mut accounts: Vec<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
                    accounts.sort_unstable();
                    accounts.dedup();
                    let distinct = accounts.len();
                    if distinct >= self.rules.ip_accounts {
                        raise(w, "ip_many_accounts", ip.to_owned(), distinct);
                    }
                }
            }
            catalogue::HELPDESK_VERIFICATION_FAILED | catalogue::HELPDESK_REVOCATION_SECRET_WRONG => {
                let times = w.by_helpdesk.entry(event.actor.clone()).or_default();
                times.push_back(now);
                times.retain(|t| *t > horizon);
                let count = times.len();
                if count >= self.rules.helpdesk_failures {
                    raise(w, "helpdesk_verification_failures", event.actor.clone(), count);
                }
            }
            catalogue::OPERATOR_ACCESS_DENIED => raise(w, "operator_exceeds_role", event.actor.clone(), 1),
            catalogue::AUTHN_COUNTER_REGRESSION => raise(w, "fido_counter_regression", event.subject.clone(), 1),
            _ => {}
        }
        raised
    }

    /// POSTs one alert to the webhook (plain HTTP/1.1; an HTTPS receiver sits behind a
    /// local relay). Failures are logged: the alert is in the chain and the sink already.
    async fn post_webhook(&self, body: &serde_json::Value) {
        let Some(url) = &self.webhook else { return };
        let result = tokio::time::timeout(Duration::from_secs(5), post_json(url, body)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "audit webhook failed"),
            Err(_) => tracing::warn!("audit webhook timed out"),
        }
    }
}

/// One sink line: the record as logged plus its chain hash, so a sink entry can be matched
/// against the database.
pub fn sink_line(record: &AuditRecord) -> serde_json::Value {
    json!({
        "seq": record.seq,
        "time": super::rfc3339(record.time),
        "event_type": record.event.event_type,
        "actor": record.event.actor,
        "subject": record.event.subject,
        "data": record.event.data,
        "hash": hex::encode(record.hash),
    })
}

/// RFC 5424: facility `authpriv` (10); severity alert (1) for alerts, warning (4) else.
fn syslog_message(line: &serde_json::Value) -> String {
    let event_type = line["event_type"].as_str().unwrap_or("-");
    let severity = if event_type == catalogue::ALERT_RAISED { 1 } else { 4 };
    let time = line["time"].as_str().unwrap_or("-");
    format!("<{}>1 {time} - eidgate - {event_type} - {line}", 10 * 8 + severity)
}

async fn post_json(url: &url::Url, body: &serde_json::Value) -> std::io::Result<()> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_owned());
    if url.scheme() != "http" {
        return Err(bad("webhook_url must be http:// (use a local relay for https)"));
    }
    let host = url.host_str().ok_or_else(|| bad("webhook_url has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
    let payload = body.to_string();
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    if head.starts_with(b"HTTP/1.1 2") || head.starts_with(b"HTTP/1.0 2") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "webhook answered {}",
            String::from_utf8_lossy(&head)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AlertRules {
        AlertRules {
            window: 60,
            account_failures: 3,
            ip_accounts: 2,
            helpdesk_failures: 2,
        }
    }

    fn record(seq: i64, time: UnixTime, event_type: &str, actor: &str, data: serde_json::Value) -> AuditRecord {
        AuditRecord {
            seq,
            time,
            event: AuditEvent::new(event_type, actor, "login", data),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    fn rules_raised(shipper: &Shipper, w: &mut Windows, r: &AuditRecord) -> Vec<String> {
        shipper
            .evaluate(w, r)
            .iter()
            .map(|e| e.data["rule"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn r_log_4_brute_force_counts_only_inside_the_window_and_alerts_once() {
        let shipper = Shipper::new(PathBuf::from("unused"), None, rules());
        let mut w = Windows::default();
        let fail = |seq, time| {
            record(
                seq,
                time,
                catalogue::LOGIN_FAILURE,
                "anonymous",
                json!({"account": "a1", "ip": "10.0.0.1"}),
            )
        };
        assert!(rules_raised(&shipper, &mut w, &fail(1, 0)).is_empty());
        // Out of the window: the first failure no longer counts.
        assert!(rules_raised(&shipper, &mut w, &fail(2, 100)).is_empty());
        assert!(rules_raised(&shipper, &mut w, &fail(3, 110)).is_empty());
        assert_eq!(rules_raised(&shipper, &mut w, &fail(4, 120)), ["brute_force_account"]);
        // The same attack goes on: no second alert inside the window.
        assert!(rules_raised(&shipper, &mut w, &fail(5, 121)).is_empty());
    }

    #[test]
    fn r_log_4_a_fido_counter_regression_and_an_access_denial_alert_at_once() {
        let shipper = Shipper::new(PathBuf::from("unused"), None, rules());
        let mut w = Windows::default();
        let regression = record(1, 0, catalogue::AUTHN_COUNTER_REGRESSION, "holder:x", json!({}));
        assert_eq!(rules_raised(&shipper, &mut w, &regression), ["fido_counter_regression"]);
        let denied = record(2, 0, catalogue::OPERATOR_ACCESS_DENIED, "operator:y", json!({}));
        assert_eq!(rules_raised(&shipper, &mut w, &denied), ["operator_exceeds_role"]);
        let ok = record(3, 0, catalogue::LOGIN_SUCCESS, "holder:x", json!({}));
        assert!(rules_raised(&shipper, &mut w, &ok).is_empty());
    }

    #[test]
    fn r_auth_7_unknown_revocation_status_of_an_external_card_alerts_once_per_window() {
        let shipper = Shipper::new(PathBuf::from("unused"), None, rules());
        let mut w = Windows::default();
        let refused = |seq, time, reason: &str| {
            record(
                seq,
                time,
                catalogue::LOGIN_FAILURE,
                "login",
                json!({"reason": reason, "ip": format!("10.0.0.{seq}")}),
            )
        };
        assert_eq!(
            rules_raised(&shipper, &mut w, &refused(1, 0, "revocation_status_unknown")),
            ["revocation_status_unavailable"]
        );
        assert!(rules_raised(&shipper, &mut w, &refused(2, 1, "revocation_status_unknown")).is_empty());
        assert!(rules_raised(&shipper, &mut w, &refused(3, 100, "certificate_revoked")).is_empty());
    }
}
