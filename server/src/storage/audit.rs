//! The audit trail: the append-only change log read by who sent what.

use sqlx::Row;

use super::{Db, StorageError};

/// One accepted change: which document, who sent it from which device, when
/// it reached the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeRow {
    pub document_id: String,
    pub hash: String,
    /// Hex automerge actor id that signed the change.
    pub actor_id: String,
    pub user_id: String,
    pub device_id: Option<String>,
    pub received_at: i64,
}

/// Filter for [`Db::list_changes`]; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub user: Option<String>,
    pub device: Option<String>,
    /// Most rows returned, newest first.
    pub limit: i64,
}

impl Db {
    pub async fn list_changes(
        &self,
        filter: &ChangeFilter,
    ) -> Result<Vec<ChangeRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT document_id, hash, actor_id, user_id, device_id, received_at FROM changes
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR device_id = $2)
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(&filter.user)
        .bind(&filter.device)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(ChangeRow {
                    document_id: r.try_get("document_id")?,
                    hash: r.try_get("hash")?,
                    actor_id: r.try_get("actor_id")?,
                    user_id: r.try_get("user_id")?,
                    device_id: r.try_get("device_id")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
