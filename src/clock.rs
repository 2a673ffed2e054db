//! The clock port. Domain rules take `now` as an argument; services read it here, so
//! expiry can be tested by moving a test clock instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::UnixTime;

/// A source of the current UTC time in seconds (R-LOG-3).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> UnixTime;

    /// Now in milliseconds (orders events within one second, e.g. a token issued just
    /// after a status change of its means).
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The system clock, with an adjustable offset for tests (`0` in production).
#[derive(Debug, Default)]
pub struct SystemClock {
    offset: AtomicI64,
    /// Tests only: the second this clock stands still at (`0` = running).
    frozen_at: AtomicI64,
}

impl SystemClock {
    /// Moves this clock by `seconds` (tests only: expiry without sleeping).
    pub fn advance(&self, seconds: i64) {
        if self.frozen_at.load(Ordering::SeqCst) != 0 {
            self.frozen_at.fetch_add(seconds, Ordering::SeqCst);
        } else {
            self.offset.fetch_add(seconds, Ordering::SeqCst);
        }
    }

    /// Stops this clock at its current second; from then on only [`advance`](Self::advance)
    /// moves it (tests only: a boundary to the exact second, with no wall-clock second
    /// turning between a test's reading and the server's).
    pub fn freeze(&self) {
        let now = self.now();
        self.frozen_at.store(now.max(1), Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        match self.frozen_at.load(Ordering::SeqCst) {
            0 => time::OffsetDateTime::now_utc().unix_timestamp() + self.offset.load(Ordering::SeqCst),
            frozen => frozen,
        }
    }

    fn now_ms(&self) -> i64 {
        let frozen = self.frozen_at.load(Ordering::SeqCst);
        if frozen != 0 {
            return frozen.saturating_mul(1000);
        }
        let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).unwrap_or(i64::MAX) + self.offset.load(Ordering::SeqCst).saturating_mul(1000)
    }
}

/// A detected wall-clock jump not yet resolved by a security officer (R-OPS-3, DESIGN
/// "When a dependency fails": clock jump). While raised, no token is issued.
#[derive(Debug, Default)]
pub struct ClockAlarm {
    /// When it was raised (UTC seconds; 0 = not raised).
    raised_at: AtomicI64,
}

impl ClockAlarm {
    /// Raises the alarm at `now` (keeps the first raise).
    pub fn raise(&self, now: UnixTime) {
        let _ = self
            .raised_at
            .compare_exchange(0, now.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// When the unresolved alarm was raised, if any.
    pub fn raised(&self) -> Option<UnixTime> {
        let at = self.raised_at.load(Ordering::SeqCst);
        (at != 0).then_some(at)
    }

    /// Clears the alarm (a security officer checked the time source); when it was raised.
    pub fn resolve(&self) -> Option<UnixTime> {
        let at = self.raised_at.swap(0, Ordering::SeqCst);
        (at != 0).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_log_3_the_clock_is_utc_unix_seconds_and_only_tests_move_it() {
        let c = SystemClock::default();
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        assert!((c.now() - system).abs() <= 2, "UTC seconds since the epoch");
        c.advance(3600);
        assert!(c.now() - system >= 3598);
    }
}
