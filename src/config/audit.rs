//! `[audit]`: the external sink, checkpoints, retention and alert rules (R-LOG-2..6).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;

/// Audit settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// External sink (JSON lines) for failures and alerts; empty = `{data_dir}/audit-sink.jsonl`.
    pub sink_path: Option<PathBuf>,
    /// Sign a checkpoint every N records.
    pub checkpoint_every: u64,
    /// Retention period.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// Sign a checkpoint at least this often when records were appended (R-LOG-2).
    #[serde(deserialize_with = "duration")]
    pub checkpoint_interval: Duration,
    /// How often the server ships new records to the sink and runs the alert rules.
    #[serde(deserialize_with = "duration")]
    pub sink_interval: Duration,
    /// Alerts are POSTed here as JSON (http://; R-LOG-4). None: sink only.
    pub webhook_url: Option<String>,
    /// Also send every sink line to this syslog collector (`host:port`, RFC 5424 over UDP).
    pub syslog_udp: Option<String>,
    /// Sliding window of the alert rules.
    #[serde(deserialize_with = "duration")]
    pub alert_window: Duration,
    /// Failed logins on one account within the window that raise an alert.
    pub alert_account_failures: usize,
    /// Distinct accounts failing from one IP within the window that raise an alert.
    pub alert_ip_accounts: usize,
    /// Failed helpdesk verifications by one operator within the window that raise an alert.
    pub alert_helpdesk_failures: usize,
}

impl AuditConfig {
    /// The sink file: `sink_path`, else `{data_dir}/audit-sink.jsonl`.
    pub fn sink_file(&self, data_dir: &Path) -> PathBuf {
        self.sink_path
            .clone()
            .unwrap_or_else(|| data_dir.join("audit-sink.jsonl"))
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sink_path: None,
            checkpoint_every: 1000,
            retention: Duration::from_secs(10 * 365 * 24 * 3600),
            checkpoint_interval: Duration::from_secs(60),
            sink_interval: Duration::from_secs(2),
            webhook_url: None,
            syslog_udp: None,
            alert_window: Duration::from_secs(15 * 60),
            alert_account_failures: 5,
            alert_ip_accounts: 5,
            alert_helpdesk_failures: 3,
        }
    }
}
