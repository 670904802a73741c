//! The devices table: one row per login. A device's token is stored only
//! as a hash; its row stays after revocation, so what it synced stays
//! attributed.

use sqlx::Row;

use super::{Db, StorageError};

/// A device, as listed for admins and created at login.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: String,
    /// The user's facility when the device logged in (receivers), for lists.
    pub facility_id: Option<String>,
    pub name: String,
    /// Hex automerge actor id the device signs its changes with.
    pub actor_id: String,
    pub created_at: i64,
    /// After this instant (ms since epoch) the token is refused.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A token's device joined with its user: everything a request needs to
/// know about who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRow {
    pub device_id: String,
    pub actor_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub user_id: String,
    pub role: String,
    pub facility_id: Option<String>,
    pub region: Option<String>,
    pub disabled_at: Option<i64>,
}

/// What decides whether a device's token still works, re-read by open
/// event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The user's, not the device's: a disabled account shuts out all its
    /// devices.
    pub disabled_at: Option<i64>,
}

impl TokenState {
    /// Whether the token works at `now_ms`: the same rule the request
    /// extractor (`caller.rs`) applies to every request.
    pub fn usable_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.disabled_at.is_none() && now_ms < self.expires_at
    }
}

const DEVICE_COLUMNS: &str =
    "id, user_id, facility_id, name, actor_id, created_at, expires_at, revoked_at";

impl Db {
    pub async fn insert_device(
        &self,
        device: &DeviceRow,
        token_hash: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO devices (id, user_id, facility_id, name, actor_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&device.id)
        .bind(&device.user_id)
        .bind(&device.facility_id)
        .bind(&device.name)
        .bind(&device.actor_id)
        .bind(token_hash)
        .bind(device.created_at)
        .bind(device.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The device holding this token, with its user; `None` for an unknown
    /// token or a device whose user no longer exists.
    pub async fn caller_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<CallerRow>, StorageError> {
        let row = sqlx::query(
            "SELECT d.id AS device_id, d.actor_id, d.expires_at, d.revoked_at,
                    u.id AS user_id, u.role, u.facility_id, u.region, u.disabled_at
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(caller_row).transpose()
    }

    /// Device `id` with its user and its token's hash (the key its
    /// hand-carried files are signed with); `None` if it does not exist.
    pub async fn carrier(&self, id: &str) -> Result<Option<(CallerRow, String)>, StorageError> {
        let row = sqlx::query(
            "SELECT d.id AS device_id, d.actor_id, d.expires_at, d.revoked_at, d.token_hash,
                    u.id AS user_id, u.role, u.facility_id, u.region, u.disabled_at
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some((caller_row(&r)?, r.try_get("token_hash")?)))
    }

    /// The validity of device `id`'s token; `None` if the device (or its
    /// user) no longer exists. Primary-key lookups only: open event streams
    /// run it every few seconds.
    pub async fn token_state(&self, id: &str) -> Result<Option<TokenState>, StorageError> {
        let row = sqlx::query(
            "SELECT d.expires_at, d.revoked_at, u.disabled_at
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(TokenState {
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
            disabled_at: r.try_get("disabled_at")?,
        }))
    }

    /// Changes after every revocation made through this `Db` (any clone of
    /// it), once it is committed. Only a nudge: a listener re-reads the
    /// devices it cares about with [`Db::token_state`]. Revocations made by
    /// another process (the `aidsync admin` CLI, a second server) do not
    /// show here.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    fn notify_revoked(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceRow>, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(device_row).transpose()?)
    }

    /// Devices, newest first; only `user`'s when given.
    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<DeviceRow>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE ($1 IS NULL OR user_id = $1)
             ORDER BY created_at DESC, id"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(device_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Revokes a device at `at` (a second revocation keeps the first time)
    /// and returns it; `None` if there is no such device.
    pub async fn revoke_device(
        &self,
        id: &str,
        at: i64,
    ) -> Result<Option<DeviceRow>, StorageError> {
        sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        self.notify_revoked();
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(device_row).transpose()?)
    }

    /// Revokes every device of `user` not yet revoked; returns how many.
    pub async fn revoke_user_devices(&self, user: &str, at: i64) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "UPDATE devices SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user)
        .bind(at)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            self.notify_revoked();
        }
        Ok(done.rows_affected())
    }

    /// Moves a device's expiry (demo tokens are renewed at each start).
    pub async fn set_device_expiry(&self, id: &str, expires_at: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE devices SET expires_at = $2 WHERE id = $1")
            .bind(id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `(device id, actor id)` of every device `user` ever logged in from,
    /// revoked and expired ones included: their records may still be in a
    /// phone's outbox.
    pub async fn user_actors(&self, user: &str) -> Result<Vec<(String, String)>, StorageError> {
        let rows = sqlx::query("SELECT id, actor_id FROM devices WHERE user_id = $1")
            .bind(user)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("actor_id")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

impl Db {
    /// Which of `actors` (hex) sign for some device of anyone's. One query;
    /// callers pass the few foreign actors of one upload.
    pub async fn known_actors(
        &self,
        actors: &[String],
    ) -> Result<std::collections::BTreeSet<String>, StorageError> {
        if actors.is_empty() {
            return Ok(Default::default());
        }
        let placeholders: Vec<String> = (1..=actors.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT actor_id FROM devices WHERE actor_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for actor in actors {
            query = query.bind(actor);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("actor_id"))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

fn device_row(r: &sqlx::any::AnyRow) -> Result<DeviceRow, sqlx::Error> {
    Ok(DeviceRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        facility_id: r.try_get("facility_id")?,
        name: r.try_get("name")?,
        actor_id: r.try_get("actor_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// A device-and-user row as the caller queries select it.
fn caller_row(r: &sqlx::any::AnyRow) -> Result<CallerRow, StorageError> {
    Ok(CallerRow {
        device_id: r.try_get("device_id")?,
        actor_id: r.try_get("actor_id")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        user_id: r.try_get("user_id")?,
        role: r.try_get("role")?,
        facility_id: r.try_get("facility_id")?,
        region: r.try_get("region")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}
