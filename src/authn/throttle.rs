//! Rate limits against guessing (R-AUTH-4, issue 19), counted in the ephemeral store so
//! that every instance sees them:
//!
//! - per address (an IPv6 client by its /64) and globally: attempts from browsers that are
//!   not known for the means;
//! - per person, on the canonical person id ([`canonical`]): one key however the
//!   identifier is spelled, and the same kind of key for identifiers nobody holds, so
//!   known and unknown identifiers answer alike;
//! - per (means, device) for a browser with a valid device cookie ([`super::device`]):
//!   failures made elsewhere never throttle it.
//!
//! Every attempt is reserved before the password is verified ([`Ephemeral::reserve`]: check
//! and count in one step), with an exponential, capped back-off after the free attempts.
//! After `login.password_lock_after` consecutive failures from unknown browsers, such
//! browsers may not try a password for that person any more, until a success from a known
//! browser or a helpdesk reset ([`reset_person`]); the means itself is never suspended.
//!
//! [`Ephemeral::reserve`]: crate::ephemeral::Ephemeral::reserve

use std::net::IpAddr;
use std::time::Duration;

use super::AuthnError;
use crate::domain::ids::{MeansId, PersonIdentifier};
use crate::domain::secret::fingerprint_hex;
use crate::ephemeral::{BackoffPolicy, Reserved};
use crate::store::AuthFactor;

/// What the login limits need: the shared ephemeral store (counters), the durable store,
/// the clock and `[login]`.
#[derive(Clone)]
pub struct Throttle {
    /// Validated configuration (`[login]`).
    pub config: std::sync::Arc<crate::config::Config>,
    /// Time source.
    pub clock: std::sync::Arc<crate::clock::SystemClock>,
    /// Durable store.
    pub store: std::sync::Arc<dyn crate::store::Store>,
    /// Counters shared by every instance.
    pub ephemeral: std::sync::Arc<dyn crate::ephemeral::Ephemeral>,
}

impl Throttle {
    fn now(&self) -> crate::domain::UnixTime {
        crate::clock::Clock::now(self.clock.as_ref())
    }

    fn now_ms(&self) -> i64 {
        crate::clock::Clock::now_ms(self.clock.as_ref())
    }
}

/// The address a per-address limit or alert counts on: an IPv4 address as it is, an IPv6
/// address by its /64 (one subscriber line gets a whole /64; counting single addresses
/// would give an attacker 2^64 of them). IPv4-mapped IPv6 addresses count as IPv4.
pub fn address_block(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The same for an address written as text (audit records); text that is no address is
/// kept as it is.
pub fn address_block_of(text: &str) -> String {
    text.parse::<IpAddr>()
        .map(address_block)
        .unwrap_or_else(|_| text.to_owned())
}

/// A typed identifier, read once for every limit and for the look-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    /// The key of every per-person limit: `pid:XX:CODE` for a parsable identifier (the
    /// holder's country, the destination ignored, case folded), else `raw:` and the
    /// normalised text (lower case, no white space).
    pub key: String,
    /// The identifier to look up, when the text parses.
    pub identifier: Option<PersonIdentifier>,
}

/// The canonical person id of `typed`: `XX/YY/code`, `XX:code` (country letters in any
/// case) or the bare personal code (the provider's `country` implied).
pub fn canonical(typed: &str, country: &str) -> Canonical {
    let typed = typed.trim();
    let parts: Vec<&str> = typed.split('/').collect();
    let split = match parts.as_slice() {
        [c, _destination, code] => Some((c.to_ascii_uppercase(), *code)),
        [single] => match single.split_once(':') {
            Some((c, code)) => Some((c.to_ascii_uppercase(), code)),
            None => Some((country.to_ascii_uppercase(), *single)),
        },
        _ => None,
    };
    let identifier = split.and_then(|(c, code)| PersonIdentifier::new(&c, code).ok());
    let key = match &identifier {
        Some(id) => key_of(id),
        None => {
            let folded: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
            format!("raw:{}", folded.to_lowercase())
        }
    };
    Canonical { key, identifier }
}

/// The canonical person id of a stored identifier (helpdesk reset).
pub fn key_of(id: &PersonIdentifier) -> String {
    format!("pid:{}:{}", id.country(), id.code().to_ascii_uppercase())
}

fn ip_key(ip: IpAddr) -> String {
    format!("rl:ip:{}", address_block(ip))
}

/// Hashed so that identifiers do not sit in the cache in clear.
fn person_key(person: &str) -> String {
    format!("thr:who:{}", fingerprint_hex(person))
}

fn blocked_key(person: &str) -> String {
    format!("thr:blocked:{}", fingerprint_hex(person))
}

fn device_key(means: MeansId, device: &str) -> String {
    format!("thr:dev:{means}:{}", fingerprint_hex(device))
}

/// Counts an attempt from `ip` (its /64) and refuses when the address is over its limit.
pub async fn attempt_from(app: &Throttle, ip: IpAddr) -> Result<(), AuthnError> {
    let limits = &app.config.login;
    let n = app.ephemeral.hit(&ip_key(ip), limits.window).await?;
    if n > limits.ip_attempts {
        let (_, left) = app.ephemeral.count(&ip_key(ip)).await?;
        return Err(AuthnError::TooManyAttempts(left.as_secs().max(1)));
    }
    Ok(())
}

fn global_key() -> &'static str {
    "rl:global"
}

/// Counts a login attempt against the global limit (all clients together): a flood
/// guard so that a botnet spread over many IPs still meets a ceiling.
pub async fn attempt_global(app: &Throttle) -> Result<(), AuthnError> {
    let limits = &app.config.login;
    let n = app.ephemeral.hit(global_key(), limits.window).await?;
    if n > limits.global_attempts {
        let (_, left) = app.ephemeral.count(global_key()).await?;
        return Err(AuthnError::TooManyAttempts(left.as_secs().max(1)));
    }
    Ok(())
}

fn policy(app: &Throttle) -> BackoffPolicy {
    let l = &app.config.login;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    BackoffPolicy {
        free: l.backoff_free,
        base_ms: ms(l.backoff_base),
        max_ms: ms(l.backoff_max),
        hard: l.password_lock_after,
    }
}

/// How long consecutive failures are remembered after the last one: long enough for the
/// hard limit to be reachable through the capped back-off.
fn memory(app: &Throttle) -> Duration {
    (app.config.login.backoff_max * 4).max(Duration::from_secs(24 * 3600))
}

fn answer(reserved: Reserved) -> Result<(), AuthnError> {
    match reserved {
        Reserved::Granted(_) => Ok(()),
        Reserved::Wait(ms) => Err(AuthnError::TooManyAttempts(ms.div_ceil(1000).max(1))),
        Reserved::Blocked => Err(AuthnError::UnknownDeviceLocked),
    }
}

/// Reserves a password attempt before it is verified. A browser known for `means`
/// (`device`) counts on its own key only; any other browser meets the global and
/// per-address limits, the hard limit and the back-off of the person (`person`: the
/// canonical id, whether anyone holds it or not).
pub async fn reserve_password(
    app: &Throttle,
    ip: IpAddr,
    person: &str,
    known: Option<(MeansId, &str)>,
) -> Result<(), AuthnError> {
    let now_ms = app.now_ms();
    if let Some((means, device)) = known {
        let r = app
            .ephemeral
            .reserve(&device_key(means, device), &policy(app), now_ms, memory(app))
            .await?;
        return answer(r);
    }
    attempt_global(app).await?;
    attempt_from(app, ip).await?;
    if app.ephemeral.get(&blocked_key(person)).await?.is_some() {
        return Err(AuthnError::UnknownDeviceLocked);
    }
    let r = app
        .ephemeral
        .reserve(&person_key(person), &policy(app), now_ms, memory(app))
        .await?;
    answer(r)
}

/// A failed password from an unknown browser on an existing means: the durable count of
/// consecutive failures, so that the hard limit survives a restart of the ephemeral store.
pub async fn unknown_device_failed(app: &Throttle, person: &str, means: MeansId) -> Result<(), AuthnError> {
    let failures = app.store.count_auth_failure(means, AuthFactor::Password).await?;
    let hard = i64::try_from(app.config.login.password_lock_after).unwrap_or(i64::MAX);
    if failures >= hard {
        app.ephemeral.put(&blocked_key(person), b"1", memory(app)).await?;
        tracing::warn!(means = %means, failures, "alert: password attempts from unknown browsers stopped");
    }
    Ok(())
}

/// A successful password: the failures of the person and of this browser are forgotten.
pub async fn password_succeeded(
    app: &Throttle,
    person: &str,
    means: MeansId,
    device: Option<&str>,
) -> Result<(), AuthnError> {
    reset_person(app, person, means).await?;
    if let Some(device) = device {
        app.ephemeral.delete(&device_key(means, device)).await?;
    }
    Ok(())
}

/// Clears the per-person back-off and the hard limit (a known browser's success, or the
/// helpdesk after verifying the holder).
pub async fn reset_person(app: &Throttle, person: &str, means: MeansId) -> Result<(), AuthnError> {
    app.ephemeral.delete(&person_key(person)).await?;
    app.ephemeral.delete(&blocked_key(person)).await?;
    app.store.clear_auth_failures(means, AuthFactor::Password).await?;
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
pub async fn check_backoff(app: &Throttle, means: MeansId, factor: AuthFactor) -> Result<(), AuthnError> {
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
pub fn backoff_after(app: &Throttle, failures: i64) -> Duration {
    Duration::from_millis(policy(app).wait_after(u64::try_from(failures).unwrap_or(0)))
}

/// Starts the back-off of `factor` of `means` after `failures` consecutive failures.
/// Returns it (zero: none yet).
pub async fn back_off(
    app: &Throttle,
    means: MeansId,
    factor: AuthFactor,
    failures: i64,
) -> Result<Duration, AuthnError> {
    let wait = backoff_after(app, failures);
    if !wait.is_zero() {
        let until = app.now() + i64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
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
pub async fn clear_backoff(app: &Throttle, means: MeansId, factor: AuthFactor) -> Result<(), AuthnError> {
    app.ephemeral.delete(&backoff_key(means, factor)).await?;
    Ok(())
}

/// Notes that `ip` (its /64) failed on `account` (a canonical person id or a means);
/// returns `true` exactly when the number of distinct accounts this address failed on
/// within the window reaches `ip_spread_alert` (one address trying many accounts: password
/// spraying, R-OPS-2).
pub async fn note_ip_spread(app: &Throttle, ip: IpAddr, account: &str) -> Result<bool, AuthnError> {
    let window = app.config.login.window;
    let block = address_block(ip);
    let pair = format!("rl:ipm:{}", fingerprint_hex(&format!("{block}|{account}")));
    if !app.ephemeral.put_new(&pair, b"1", window).await? {
        return Ok(false);
    }
    let n = app.ephemeral.hit(&format!("rl:ipspread:{block}"), window).await?;
    Ok(n == app.config.login.ip_spread_alert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_auth_4_one_key_per_person_whatever_the_spelling() {
        let keys: Vec<String> = [
            "LT/LT/38001085718",
            "lt/lt/38001085718",
            "LT/LV/38001085718",
            "LT:38001085718",
            " lt:38001085718 ",
            "38001085718",
        ]
        .iter()
        .map(|s| canonical(s, "LT").key)
        .collect();
        assert!(keys.iter().all(|k| k == "pid:LT:38001085718"), "{keys:?}");
        assert_eq!(canonical("LT:ab-1", "LT").key, canonical("lt:AB-1", "LT").key);
        assert_ne!(canonical("LV:38001085718", "LT").key, keys[0]);
        let odd = canonical("Not An Id!", "LT");
        assert_eq!(odd.identifier, None);
        assert_eq!(odd.key, canonical("not an ID!", "LT").key);
    }

    #[test]
    fn r_auth_4_ipv6_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap_or(IpAddr::from([0u8; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(address_block(a), address_block(b));
        assert_ne!(address_block(a), address_block(c));
        assert_eq!(address_block(a), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(address_block(mapped), "10.0.0.1");
        assert_eq!(address_block_of("2001:db8:1:2::5"), "2001:db8:1:2::/64");
    }

    #[test]
    fn backoff_doubles_after_the_free_attempts_and_is_capped() {
        let p = BackoffPolicy {
            free: 3,
            base_ms: 2000,
            max_ms: 900_000,
            hard: 100,
        };
        assert_eq!((1..=3).map(|n| p.wait_after(n)).sum::<u64>(), 0);
        assert_eq!(p.wait_after(4), 2000);
        assert_eq!(p.wait_after(5), 4000);
        assert_eq!(p.wait_after(60), 900_000);
    }
}
