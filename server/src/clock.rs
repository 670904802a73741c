//! The server's one clock. Handlers ask it for the time instead of reading
//! the system clock themselves, so a test can move it forward (a token
//! expires, a rate limit refills) instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system clock plus an offset that only tests change.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        crate::service::now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, for people reading a listing or a report.
pub fn format_utc(ms: i64) -> String {
    // The date as the model writes dates (no date crate needed for a few
    // columns), then the time of day.
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        aidsync_shared::model::date_of(ms),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn formats_utc_dates_across_leap_days_and_before_1970() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_795_651_199_000), "2026-11-25 23:59:59");
        assert_eq!(format_utc(-1_000), "1969-12-31 23:59:59");
    }
}
