//! Rate limits against guessing (R-AUTH-4): attempts per client IP and failures per
//! account, counted in the ephemeral store so that every instance sees them.

use std::net::IpAddr;

use super::AuthnError;
use crate::app::App;
use crate::domain::secret::fingerprint_hex;

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
