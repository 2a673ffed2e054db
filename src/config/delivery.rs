//! `[delivery]`: which adapter carries activation codes and revocation secrets.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The adapter family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryAdapter {
    /// `{data_dir}/outbox/`, one JSON file per message (embedded default).
    #[default]
    Outbox,
    /// E-mail by SMTP (or the webhook when no SMTP is set), SMS and post by the webhook.
    Gateways,
}

/// `[delivery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// `outbox` (default) or `gateways`.
    pub adapter: DeliveryAdapter,
    /// The outbox directory; default `{data_dir}/outbox`.
    pub outbox: Option<PathBuf>,
    /// `[delivery.smtp]`: the e-mail channel.
    pub smtp: Option<SmtpConfig>,
    /// `[delivery.webhook]`: the SMS / registered-mail gateway.
    pub webhook: Option<WebhookConfig>,
}

/// `[delivery.smtp]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name (TLS certificate name).
    pub host: String,
    /// Port: 465 (implicit TLS) by default; 587 uses STARTTLS.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `From:` address.
    pub from: String,
    /// User name for SMTP AUTH.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the SMTP password (never the password in the config).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Read from `password_file` at start.
    #[serde(skip)]
    pub password: Option<SecretString>,
}

fn default_smtp_port() -> u16 {
    465
}

/// `[delivery.webhook]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://` URL the message JSON is POSTed to.
    pub url: String,
    /// File holding a bearer token for the gateway.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Read from `token_file` at start.
    #[serde(skip)]
    pub token: Option<SecretString>,
    /// Request timeout.
    #[serde(default = "default_timeout", deserialize_with = "crate::config::duration")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn read_secret(path: &Option<PathBuf>, key: &'static str) -> Result<Option<SecretString>, crate::config::ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|source| crate::config::ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(crate::config::ConfigError::Invalid {
            key,
            why: "the file is empty".into(),
        });
    }
    Ok(Some(SecretString::from(text.to_owned())))
}

impl DeliveryConfig {
    /// Validates the adapter settings and reads the secret files.
    pub fn finish(&mut self) -> Result<(), crate::config::ConfigError> {
        let invalid = |key, why: &str| crate::config::ConfigError::Invalid { key, why: why.into() };
        if let Some(smtp) = &mut self.smtp {
            if smtp.host.trim().is_empty() || !smtp.from.contains('@') {
                return Err(invalid("delivery.smtp", "host and a from address are required"));
            }
            smtp.password = read_secret(&smtp.password_file, "delivery.smtp.password_file")?;
            if smtp.username.is_some() != smtp.password.is_some() {
                return Err(invalid("delivery.smtp", "username and password_file go together"));
            }
        }
        if let Some(hook) = &mut self.webhook {
            let url = url::Url::parse(&hook.url).map_err(|e| invalid("delivery.webhook.url", &e.to_string()))?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(invalid("delivery.webhook.url", "https:// (http:// only to loopback)"));
            }
            hook.token = read_secret(&hook.token_file, "delivery.webhook.token_file")?;
        }
        if self.adapter == DeliveryAdapter::Gateways && self.webhook.is_none() {
            return Err(invalid(
                "delivery.webhook",
                "the gateways adapter needs a webhook for the sms and post channels",
            ));
        }
        Ok(())
    }
}
