//! Budgets of attempts per key, shared by every server process on the
//! database (failed logins): the same leaky bucket as the in-process
//! `rate_limit` module, one row per key that was active in the last minute.

use sqlx::Row;

use super::{Backend, Db, StorageError};

/// One attempt, in the units of `login_throttle.debt`: a budget of N per
/// minute repays N units per millisecond, so one attempt in 1/N minutes.
const UNIT: i64 = 60_000;

impl Db {
    fn greatest(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "MAX",
            Backend::Postgres => "GREATEST",
        }
    }

    /// Takes one attempt from `key`'s budget of `per_minute` (bursts up to
    /// the same number); when it is used up, takes nothing and says in how
    /// many milliseconds one attempt is free again. 0 means unlimited.
    pub async fn take_attempt(
        &self,
        key: &str,
        per_minute: u32,
        now_ms: i64,
    ) -> Result<Result<(), i64>, StorageError> {
        if per_minute == 0 {
            return Ok(Ok(()));
        }
        let rate = i64::from(per_minute);
        let g = self.greatest();
        // One statement: atomic on both backends, however many servers
        // take from the same key at once.
        let owed =
            format!("{g}(0, login_throttle.debt - {g}(0, $3 - login_throttle.last_ms) * $4)");
        let taken = sqlx::query(&format!(
            "INSERT INTO login_throttle (key, debt, last_ms) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET debt = {owed} + $2, last_ms = $3
             WHERE {owed} + $2 <= $5
             RETURNING debt"
        ))
        .bind(key)
        .bind(UNIT)
        .bind(now_ms)
        .bind(rate)
        .bind(rate * UNIT)
        .fetch_optional(&self.pool)
        .await?;
        if taken.is_some() {
            // Rows a minute old owe nothing: forgetting them changes no answer.
            sqlx::query("DELETE FROM login_throttle WHERE last_ms < $1")
                .bind(now_ms - UNIT)
                .execute(&self.pool)
                .await?;
            return Ok(Ok(()));
        }
        Ok(Err(self.wait_ms(key, rate, now_ms).await?))
    }

    /// Whether `key` has an attempt left, taking nothing: `Err` says in
    /// how many milliseconds it will.
    pub async fn check_attempt(
        &self,
        key: &str,
        per_minute: u32,
        now_ms: i64,
    ) -> Result<Result<(), i64>, StorageError> {
        if per_minute == 0 {
            return Ok(Ok(()));
        }
        match self.wait_ms(key, i64::from(per_minute), now_ms).await? {
            0 => Ok(Ok(())),
            wait => Ok(Err(wait)),
        }
    }

    /// Returns one attempt taken from `key` (one that succeeded).
    pub async fn give_back_attempt(
        &self,
        key: &str,
        per_minute: u32,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        if per_minute == 0 {
            return Ok(());
        }
        let g = self.greatest();
        sqlx::query(&format!(
            "UPDATE login_throttle
             SET debt = {g}(0, {g}(0, debt - {g}(0, $2 - last_ms) * $3) - $4),
                 last_ms = {g}(last_ms, $2)
             WHERE key = $1"
        ))
        .bind(key)
        .bind(now_ms)
        .bind(i64::from(per_minute))
        .bind(UNIT)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Milliseconds until `key` has an attempt free (0: it has now).
    async fn wait_ms(&self, key: &str, rate: i64, now_ms: i64) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT debt, last_ms FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(0) };
        let debt: i64 = row.try_get("debt")?;
        let last_ms: i64 = row.try_get("last_ms")?;
        let owed = (debt - (now_ms - last_ms).max(0).saturating_mul(rate)).max(0);
        let over = owed + UNIT - rate * UNIT;
        Ok(if over <= 0 {
            0
        } else {
            (over + rate - 1) / rate
        })
    }
}
