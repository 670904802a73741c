//! Keyed token-bucket rate limiting for per-token, per-IP and login-failure limits.
//!
//! Sans-IO: the caller passes the time in, so tests advance a clock instead of sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// How fast one key may act: `per_minute` units per minute on average, bursts up to `per_minute`. 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
}

/// Refused: try again after this many whole seconds (>= 1), for a `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// Keys tracked before the map is swept for entries that carry no information.
const MAX_KEYS: usize = 100_000;

/// One unit costs this much debt. Debt is counted in "milliseconds × per_minute",
/// so `elapsed_ms * per_minute` pays it back exactly: integer arithmetic, yet the
/// refill is smooth for any rate (7 a minute frees a unit every 8571.43 ms).
const UNIT: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Units taken and not yet refilled, in `UNIT`s, as of `last_ms`.
    debt: u64,
    last_ms: i64,
}

impl Bucket {
    /// Debt remaining at `now_ms`. A clock that went backwards counts as no time
    /// passed: refilling would grant units, and refusing until the clock catches
    /// up again would lock every key out for the length of the jump.
    fn debt_at(&self, now_ms: i64, per_minute: u32) -> u64 {
        // Negative elapsed (clock went back) fails the conversion and counts as 0.
        let elapsed = u64::try_from(now_ms.saturating_sub(self.last_ms)).unwrap_or(0);
        self.debt
            .saturating_sub(elapsed.saturating_mul(u64::from(per_minute)))
    }
}

#[derive(Debug)]
struct State<K> {
    buckets: HashMap<K, Bucket>,
    /// Map size at which the next sweep runs; see `RateLimiter::sweep`.
    sweep_at: usize,
}

#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    min_sweep_at: usize,
    state: Mutex<State<K>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Rate) -> Self {
        Self::with_max_keys(rate, MAX_KEYS)
    }

    fn with_max_keys(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            min_sweep_at: max_keys,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                sweep_at: max_keys,
            }),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one unit for `key` if one is available.
    pub fn take(&self, key: &K, now_ms: i64) -> Result<(), RetryAfter> {
        let per_minute = self.rate.per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        // Nothing under this lock can panic between writes to one bucket, so a
        // poisoned map is still consistent: refusing service over it would be worse.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = state.buckets.get_mut(key) {
            let debt = bucket.debt_at(now_ms, per_minute);
            // Re-anchor even when refusing, so a backwards clock is absorbed once
            // and refill resumes from the new reading.
            *bucket = Bucket {
                debt,
                last_ms: now_ms,
            };
            admit(debt, per_minute)?;
            bucket.debt = debt + UNIT;
            return Ok(());
        }
        if state.buckets.len() >= state.sweep_at {
            self.sweep(&mut state, now_ms);
        }
        // A key we hold nothing for has a full bucket, and per_minute >= 1 here.
        state.buckets.insert(
            key.clone(),
            Bucket {
                debt: UNIT,
                last_ms: now_ms,
            },
        );
        Ok(())
    }

    /// Whether `key` has a unit available, without taking it (e.g. checking a login before verifying the password, and only `take` on failure).
    pub fn check(&self, key: &K, now_ms: i64) -> Result<(), RetryAfter> {
        let per_minute = self.rate.per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.buckets.get(key) {
            Some(bucket) => admit(bucket.debt_at(now_ms, per_minute), per_minute),
            None => Ok(()),
        }
    }

    /// Returns one unit taken for `key` (a login attempt counted up front
    /// that turned out to succeed). Never grants more than a full bucket.
    pub fn give_back(&self, key: &K, now_ms: i64) {
        let per_minute = self.rate.per_minute;
        if per_minute == 0 {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = state.buckets.get_mut(key) {
            *bucket = Bucket {
                debt: bucket.debt_at(now_ms, per_minute).saturating_sub(UNIT),
                last_ms: now_ms.max(bucket.last_ms),
            };
        }
    }

    /// Drops buckets that are full at `now_ms`: forgetting them changes no answer.
    ///
    /// Buckets still refilling are kept even past `MAX_KEYS`: evicting them would
    /// hand a fresh burst to exactly the keys being limited, so an attacker
    /// rotating IPs could reset a victim's login-failure count. They stay bounded
    /// anyway, since a bucket is full again at most a minute after its last take:
    /// the map holds about the keys active in the last minute. Sweeping only when
    /// the map reaches `sweep_at`, then moving it to twice what survived, keeps
    /// the O(n) scan amortised O(1) per new key even when nothing can be dropped.
    fn sweep(&self, state: &mut State<K>, now_ms: i64) {
        let per_minute = self.rate.per_minute;
        state
            .buckets
            .retain(|_, bucket| bucket.debt_at(now_ms, per_minute) > 0);
        state.sweep_at = self.min_sweep_at.max(state.buckets.len().saturating_mul(2));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }
}

/// Ok if a bucket holding `debt` has room for one more unit; otherwise how long
/// until it will.
fn admit(debt: u64, per_minute: u32) -> Result<(), RetryAfter> {
    let rate = u64::from(per_minute);
    let capacity = rate * UNIT;
    let excess = (debt + UNIT).saturating_sub(capacity);
    if excess == 0 {
        return Ok(());
    }
    // `excess` pays back at `rate` per ms, i.e. `rate * 1000` per second.
    Err(RetryAfter(excess.div_ceil(rate * 1000).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arbitrary wall-clock reading, so tests don't depend on the epoch.
    const T0: i64 = 1_700_000_000_000;

    fn limiter(per_minute: u32) -> RateLimiter<&'static str> {
        RateLimiter::new(Rate { per_minute })
    }

    #[test]
    fn allows_a_full_burst_then_refuses() {
        let l = limiter(5);
        for i in 0..5 {
            assert_eq!(l.take(&"a", T0), Ok(()), "unit {i} of the burst");
        }
        assert!(l.take(&"a", T0).is_err());
    }

    #[test]
    fn retry_after_is_the_wait_rounded_up_to_whole_seconds() {
        let l = limiter(1);
        assert_eq!(l.take(&"a", T0), Ok(()));
        assert_eq!(l.take(&"a", T0), Err(RetryAfter(60)));
        // 1001 ms left: rounds up to 2 s, never down to 1.
        assert_eq!(l.take(&"a", T0 + 58_999), Err(RetryAfter(2)));
        // 1 ms left still asks for a whole second.
        assert_eq!(l.take(&"a", T0 + 59_999), Err(RetryAfter(1)));
        assert_eq!(l.take(&"a", T0 + 60_000), Ok(()));
    }

    #[test]
    fn refills_one_unit_per_interval_to_the_millisecond() {
        let l = limiter(60);
        for _ in 0..60 {
            assert_eq!(l.take(&"a", T0), Ok(()));
        }
        assert_eq!(l.take(&"a", T0 + 999), Err(RetryAfter(1)));
        assert_eq!(l.take(&"a", T0 + 1_000), Ok(()));
        assert!(l.take(&"a", T0 + 1_000).is_err());
        assert!(l.take(&"a", T0 + 1_999).is_err());
        assert_eq!(l.take(&"a", T0 + 2_000), Ok(()));
    }

    #[test]
    fn refill_is_smooth_when_the_interval_is_not_whole_milliseconds() {
        // 7 a minute: one unit every 8571.43 ms.
        let l = limiter(7);
        for _ in 0..7 {
            assert_eq!(l.take(&"a", T0), Ok(()));
        }
        assert!(l.take(&"a", T0 + 8_571).is_err());
        assert_eq!(l.take(&"a", T0 + 8_572), Ok(()));
        // The fraction carried over: the next unit is due at 17142.86 ms.
        assert!(l.take(&"a", T0 + 17_142).is_err());
        assert_eq!(l.take(&"a", T0 + 17_143), Ok(()));
    }

    #[test]
    fn check_does_not_consume() {
        let l = limiter(2);
        for _ in 0..10 {
            assert_eq!(l.check(&"a", T0), Ok(()));
        }
        assert_eq!(l.len(), 0, "checking an unknown key stores nothing");
        assert_eq!(l.take(&"a", T0), Ok(()));
        assert_eq!(l.check(&"a", T0), Ok(()));
        assert_eq!(l.take(&"a", T0), Ok(()));
        assert_eq!(l.check(&"a", T0), Err(RetryAfter(30)));
        assert_eq!(l.take(&"a", T0), Err(RetryAfter(30)));
    }

    #[test]
    fn keys_are_limited_independently() {
        let l = limiter(1);
        assert_eq!(l.take(&"a", T0), Ok(()));
        assert!(l.take(&"a", T0).is_err());
        assert_eq!(l.check(&"b", T0), Ok(()));
        assert_eq!(l.take(&"b", T0), Ok(()));
        assert!(l.take(&"b", T0).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited_and_stores_nothing() {
        let l = limiter(0);
        for _ in 0..1_000 {
            assert_eq!(l.take(&"a", T0), Ok(()));
        }
        assert_eq!(l.check(&"a", T0), Ok(()));
        assert_eq!(l.len(), 0);
        assert_eq!(l.rate(), Rate { per_minute: 0 });
    }

    #[test]
    fn backwards_clock_grants_nothing_and_counts_as_no_time_passed() {
        let l = limiter(60);
        let later = T0 + 10_000;
        for _ in 0..60 {
            assert_eq!(l.take(&"a", later), Ok(()));
        }
        // Far in the past: still exhausted, still one second to wait.
        assert_eq!(l.check(&"a", T0 - 3_600_000), Err(RetryAfter(1)));
        assert_eq!(l.take(&"a", T0), Err(RetryAfter(1)));
        // Refill resumes from the new reading rather than waiting for `later`.
        assert_eq!(l.take(&"a", T0 + 1_000), Ok(()));
        assert!(l.take(&"a", T0 + 1_000).is_err());
    }

    #[test]
    fn extreme_clock_values_do_not_panic() {
        let l = limiter(u32::MAX);
        assert_eq!(l.take(&"a", i64::MAX), Ok(()));
        assert_eq!(l.take(&"a", i64::MIN), Ok(()));
        assert_eq!(l.take(&"a", i64::MAX), Ok(()));
        let l = limiter(1);
        assert_eq!(l.take(&"a", i64::MIN), Ok(()));
        assert_eq!(l.take(&"a", i64::MAX), Ok(()));
        assert_eq!(l.take(&"a", i64::MIN), Err(RetryAfter(60)));
    }

    #[test]
    fn sweep_drops_full_buckets_but_keeps_ones_still_refilling() {
        let l = RateLimiter::with_max_keys(Rate { per_minute: 1 }, 3);
        for key in ["a", "b", "c"] {
            assert_eq!(l.take(&key, T0), Ok(()));
        }
        // At the cap, but every bucket is still refilling: nothing may go, or
        // "a" would get a fresh unit.
        assert_eq!(l.take(&"d", T0), Ok(()));
        assert_eq!(l.len(), 4);
        assert!(l.take(&"a", T0).is_err());
        // The sweep at "d" moved the threshold to 2 × 3 survivors.
        // A minute later a-d are full again and carry no information.
        assert_eq!(l.take(&"e", T0 + 60_000), Ok(()));
        assert_eq!(l.take(&"f", T0 + 60_000), Ok(()));
        assert_eq!(l.len(), 6);
        assert_eq!(l.take(&"g", T0 + 60_000), Ok(()));
        assert_eq!(l.len(), 3, "a-d swept, e and f still refilling, g added");
    }

    #[test]
    fn map_stays_bounded_under_rotating_keys() {
        let max_keys = 50;
        let l = RateLimiter::with_max_keys(Rate { per_minute: 60 }, max_keys);
        // A new key every 100 ms; each bucket is full again 1 s after its take,
        // so only about ten are live at any moment.
        let mut peak = 0;
        for i in 0..10_000_i64 {
            assert_eq!(l.take(&i, T0 + i * 100), Ok(()));
            peak = peak.max(l.len());
        }
        assert!(peak <= max_keys + 1, "peak {peak}");
    }

    #[test]
    fn give_back_returns_a_unit_but_never_more_than_a_full_bucket() {
        let limiter = RateLimiter::new(Rate { per_minute: 2 });
        let key = "anna";
        assert_eq!(limiter.take(&key, 0), Ok(()));
        assert_eq!(limiter.take(&key, 0), Ok(()));
        assert!(limiter.take(&key, 0).is_err());
        limiter.give_back(&key, 0);
        assert_eq!(limiter.take(&key, 0), Ok(()));
        assert!(limiter.take(&key, 0).is_err());
        // Giving back more than was taken leaves a full bucket, no more.
        for _ in 0..5 {
            limiter.give_back(&key, 0);
        }
        assert_eq!(limiter.take(&key, 0), Ok(()));
        assert_eq!(limiter.take(&key, 0), Ok(()));
        assert!(limiter.take(&key, 0).is_err());
    }
}
