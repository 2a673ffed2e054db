//! `[login]`: login limits, back-off and locks (R-AUTH-4).

use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;
use super::error::ConfigError;

/// Login limits (R-AUTH-4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Ignored since device trust (issue 19): the per-person back-off
    /// (`backoff_free`, `backoff_base`, `backoff_max`) replaced it. Kept so that existing
    /// configuration files still load.
    pub account_failures: u64,
    /// Attempts per IP per window before 429.
    pub ip_attempts: u64,
    /// The rate-limit window.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    /// argon2id workers (0 = number of cores).
    pub hash_workers: usize,
    /// Queue deadline for an argon2id verification.
    #[serde(deserialize_with = "duration")]
    pub hash_deadline: Duration,
    /// Login attempts per window from all clients together before 429 (a flood guard).
    pub global_attempts: u64,
    /// Consecutive wrong TOTP codes that lock a means until helpdesk reactivation
    /// (R-AUTH-4, NIST 800-63B 5.2.2).
    pub totp_lock_after: u64,
    /// Consecutive wrong passwords from browsers without a device cookie after which such
    /// browsers may no longer try a password for that person, until a success from a
    /// known browser or a helpdesk reset (NIST 800-63B 5.2.2: at most 100). The means is
    /// never suspended for it.
    pub password_lock_after: u64,
    /// Failures of one factor tolerated before the back-off starts.
    pub backoff_free: u64,
    /// The first back-off; it doubles with every further failure.
    #[serde(deserialize_with = "duration")]
    pub backoff_base: Duration,
    /// The longest back-off.
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// Distinct means one IP may fail on within the window before an alert is raised.
    pub ip_spread_alert: u64,
    /// Login flows one address (IPv6: its /64) may have open at once; more get 429.
    pub flows_per_address: u64,
    /// How long a browser's device cookie is trusted after its last successful login.
    #[serde(deserialize_with = "duration")]
    pub device_ttl: Duration,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            account_failures: 5,
            ip_attempts: 100,
            window: Duration::from_secs(300),
            hash_workers: 0,
            hash_deadline: Duration::from_secs(5),
            global_attempts: 20_000,
            totp_lock_after: 10,
            password_lock_after: 100,
            backoff_free: 3,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(900),
            ip_spread_alert: 5,
            flows_per_address: 50,
            device_ttl: Duration::from_secs(180 * 24 * 3600),
        }
    }
}

impl LoginConfig {
    /// NIST 800-63B 5.2.2: at most 100 consecutive failed attempts on one account.
    pub(super) fn validate_locks(&self) -> Result<(), ConfigError> {
        let login = self;
        if !(1..=100).contains(&login.totp_lock_after) || !(1..=100).contains(&login.password_lock_after) {
            return Err(ConfigError::Invalid {
                key: "login.totp_lock_after / login.password_lock_after",
                why: "between 1 and 100 (NIST 800-63B 5.2.2)".into(),
            });
        }
        Ok(())
    }

    /// A positive back-off base no longer than the maximum.
    pub(super) fn validate_backoff(&self) -> Result<(), ConfigError> {
        let login = self;
        if login.backoff_base.is_zero() || login.backoff_max < login.backoff_base {
            return Err(ConfigError::Invalid {
                key: "login.backoff_base / login.backoff_max",
                why: "a positive base no longer than the maximum".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn r_auth_4_lock_limits_stay_within_nist_and_parse_from_toml() {
        let mut c = Config::from_toml("[login]\ntotp_lock_after = 5\nbackoff_max = \"1m\"").unwrap();
        c.finish().unwrap();
        assert_eq!(c.login.totp_lock_after, 5);
        assert_eq!(c.login.password_lock_after, 100);
        assert_eq!(c.login.backoff_max, Duration::from_secs(60));
        for bad in [
            "[login]\ntotp_lock_after = 0",
            "[login]\npassword_lock_after = 101",
            "[login]\nbackoff_base = \"0s\"",
            "[login]\nbackoff_base = \"2m\"\nbackoff_max = \"1m\"",
        ] {
            let mut c = Config::from_toml(bad).unwrap();
            assert!(c.finish().is_err(), "{bad}");
        }
    }
}
