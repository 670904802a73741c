//! Everything the server stored, as comparable rows: proves that a refused
//! request left the database exactly as it was.

use anyhow::Context;
use sqlx::Row;
use sqlx::any::{AnyPoolOptions, AnyRow};

/// Rows of every table that sync or the API writes, in a stable order.
/// Devices are left out: registering one is a legitimate write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub counter: i64,
    pub documents: Vec<String>,
    pub changes: Vec<String>,
    pub shipments: Vec<String>,
}

impl Fingerprint {
    pub async fn take(database_url: &str) -> anyhow::Result<Fingerprint> {
        sqlx::any::install_default_drivers();
        let (url, _) = aidsync_server::storage::normalize_url(database_url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .context("fingerprint: connecting")?;
        let rows = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query(sql).fetch_all(&pool).await }
        };
        let counter: i64 = sqlx::query("SELECT value FROM sync_counter")
            .fetch_one(&pool)
            .await?
            .try_get("value")?;
        let documents = rows(
            "SELECT id, facility_id, created_version, version, snapshot_seq FROM documents ORDER BY id",
        )
        .await?
        .iter()
        .map(|r| join(r, &["id", "facility_id"], &["created_version", "version", "snapshot_seq"]))
        .collect::<Result<_, _>>()?;
        let changes = rows(
            "SELECT document_id, hash, actor_id, user_id, version FROM changes ORDER BY document_id, hash",
        )
        .await?
        .iter()
        .map(|r| join(r, &["document_id", "hash", "actor_id", "user_id"], &["version"]))
        .collect::<Result<_, _>>()?;
        let shipments = rows(
            "SELECT id, status, received, damaged, receipts, updated_at FROM shipments ORDER BY id",
        )
        .await?
        .iter()
        .map(|r| {
            join(
                r,
                &["id", "status"],
                &["received", "damaged", "receipts", "updated_at"],
            )
        })
        .collect::<Result<_, _>>()?;
        pool.close().await;
        Ok(Fingerprint {
            counter,
            documents,
            changes,
            shipments,
        })
    }
}

fn join(row: &AnyRow, texts: &[&str], numbers: &[&str]) -> Result<String, sqlx::Error> {
    let mut parts = Vec::with_capacity(texts.len() + numbers.len());
    for name in texts {
        parts.push(row.try_get::<String, _>(*name)?);
    }
    for name in numbers {
        parts.push(row.try_get::<i64, _>(*name)?.to_string());
    }
    Ok(parts.join("|"))
}
