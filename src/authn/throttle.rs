//! Rate limits against guessing (R-AUTH-4): attempts per client IP and globally, failures
//! per account, exponential back-off per factor of a means, and the one-IP-many-accounts
//! alert, counted in the ephemeral store so that every instance sees them. The durable
//! per-means failure counters behind the hard lock are in SQL (`store::AuthFactor`).

use std::net::IpAddr;
use std::time::Duration;

use super::AuthnError;
use crate::app::App;
use crate::domain::ids::MeansId;
use crate::domain::secret::fingerprint_hex;
use crate::store::AuthFactor;

fn ip_key(ip: IpAddr) -> String {
    format!("rl:ip:{ip}")
}

fn account_key(account: &str) -> String {
    // Hashed so that identifiers do not sit in the cache in clear.
    format!("rl:acct:{}", fingerprint_hex(account))
}

/// Counts an attempt from `ip` and refuses when the IP is over its limit.
pub async fn attempt_from(app: &App, ip: IpAddr) -> Result<(), AuthnError> {
    let limits = &app.config.login;
    let n = app.ephemeral.hit(&ip_key(ip), limits.window).await?;
    if n > limits.ip_attempts {
        let (_, left) = app.ephemeral.count(&ip_key(ip)).await?;
        return Err(AuthnError::TooManyAttempts(left.as_secs().max(1)));
    }
    Ok(())
}

/// Refuses when `account` has failed too often within the window.
pub async fn check_account(app: &App, account: &str) -> Result<(), AuthnError> {
    let (n, left) = app.ephemeral.count(&account_key(account)).await?;
    if n >= app.config.login.account_failures {
        return Err(AuthnError::TooManyAttempts(left.as_secs().max(1)));
    }
    Ok(())
}

/// Records a failure for `account`.
pub async fn failed(app: &App, account: &str) -> Result<(), AuthnError> {
    app.ephemeral
        .hit(&account_key(account), app.config.login.window)
        .await?;
    Ok(())
}

/// Clears the failures of `account` after a success.
pub async fn succeeded(app: &App, account: &str) -> Result<(), AuthnError> {
    app.ephemeral.delete(&account_key(account)).await?;
    Ok(())
}

fn global_key() -> &'static str {
    "rl:global"
}

/// Counts a login attempt against the global limit (all clients together): a flood
/// guard so that a botnet spread over many IPs still meets a ceiling.
pub async fn attempt_global(app: &App) -> Result<(), AuthnError> {
    let limits = &app.config.login;
    let n = app.ephemeral.hit(global_key(), limits.window).await?;
    if n > limits.global_attempts {
        let (_, left) = app.ephemeral.count(global_key()).await?;
        return Err(AuthnError::TooManyAttempts(left.as_secs().max(1)));
    }
    Ok(())
}

/// The back-off of one factor of one means: when the next attempt may be made.
#[derive(serde::Serialize, serde::Deserialize)]
struct Backoff {
    until: crate::domain::UnixTime,
}

fn backoff_key(means: MeansId, factor: AuthFactor) -> String {
    let f = match factor {
        AuthFactor::Password => "pwd",
        AuthFactor::Otp => "otp",
    };
    format!("bo:{means}:{f}")
}

/// Refuses while `factor` of `means` is backing off (R-AUTH-4): 429 with the seconds
/// left. Time is the app clock.
pub async fn check_backoff(app: &App, means: MeansId, factor: AuthFactor) -> Result<(), AuthnError> {
    let stored: Option<Backoff> = crate::ephemeral::decode(app.ephemeral.get(&backoff_key(means, factor)).await?);
    match stored {
        Some(b) if b.until > app.now() => Err(AuthnError::TooManyAttempts(
            u64::try_from(b.until - app.now()).unwrap_or(1).max(1),
        )),
        _ => Ok(()),
    }
}

/// The back-off after `failures` consecutive failures: none for the first
/// `backoff_free`, then `backoff_base` doubling each time, at most `backoff_max`.
pub fn backoff_after(app: &App, failures: i64) -> Duration {
    let limits = &app.config.login;
    let over = u64::try_from(failures).unwrap_or(0).saturating_sub(limits.backoff_free);
    if over == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32
        .checked_shl(u32::try_from(over - 1).unwrap_or(u32::MAX).min(31))
        .unwrap_or(u32::MAX);
    limits.backoff_base.saturating_mul(factor).min(limits.backoff_max)
}

/// Starts the back-off of `factor` of `means` after `failures` consecutive failures.
/// Returns it (zero: none yet).
pub async fn back_off(app: &App, means: MeansId, factor: AuthFactor, failures: i64) -> Result<Duration, AuthnError> {
    let wait = backoff_after(app, failures);
    if !wait.is_zero() {
        let until = app.now() + crate::oidc::token::secs(wait);
        crate::ephemeral::put_json(
            app.ephemeral.as_ref(),
            &backoff_key(means, factor),
            &Backoff { until },
            app.config.login.backoff_max.max(wait),
        )
        .await?;
    }
    Ok(wait)
}

/// Ends the back-off of `factor` of `means` after a success.
pub async fn clear_backoff(app: &App, means: MeansId, factor: AuthFactor) -> Result<(), AuthnError> {
    app.ephemeral.delete(&backoff_key(means, factor)).await?;
    Ok(())
}

/// Notes that `ip` failed on `means`; returns `true` exactly when the number of distinct
/// means this IP failed on within the window reaches `ip_spread_alert` (one IP trying
/// many accounts: password spraying, R-OPS-2).
pub async fn note_ip_spread(app: &App, ip: IpAddr, means: MeansId) -> Result<bool, AuthnError> {
    let window = app.config.login.window;
    let pair = format!("rl:ipm:{}", fingerprint_hex(&format!("{ip}|{means}")));
    if !app.ephemeral.put_new(&pair, b"1", window).await? {
        return Ok(false);
    }
    let n = app.ephemeral.hit(&format!("rl:ipspread:{ip}"), window).await?;
    Ok(n == app.config.login.ip_spread_alert)
}
