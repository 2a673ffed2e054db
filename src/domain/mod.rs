//! Pure types and rules. No I/O: only std, serde, time, uuid, thiserror, secrecy/zeroize,
//! subtle and sha2 (for constant-time comparison and fingerprints of secrets).

pub mod cause;
pub mod claims;
pub mod client;
pub mod client_keys;
pub mod eidas_scopes;
pub mod html;
pub mod ids;
pub mod incident;
pub mod legal;
pub mod loa;
pub mod means;
pub mod operator;
pub mod person;
pub mod record_text;
pub mod secret;
pub mod wire;

/// Seconds since the Unix epoch, UTC (R-LOG-3). Domain functions take `now` as an
/// argument so that expiry is testable without sleeping.
pub type UnixTime = i64;

/// Whole seconds of a duration as `i64` (saturating), for arithmetic with [`UnixTime`].
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
