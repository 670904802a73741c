//! The facilities table.

use sqlx::Row;

use super::{Db, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FacilityRow {
    pub id: String,
    pub name: String,
    pub region: String,
    pub created_at: i64,
}

impl Db {
    /// Inserts a facility; `Ok(false)` if one with this id already exists.
    pub async fn insert_facility(&self, facility: &FacilityRow) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO facilities (id, name, region, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&facility.id)
        .bind(&facility.name)
        .bind(&facility.region)
        .bind(facility.created_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn facility(&self, id: &str) -> Result<Option<FacilityRow>, StorageError> {
        let row = sqlx::query("SELECT id, name, region, created_at FROM facilities WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(facility_row).transpose()?)
    }

    /// Every facility, by region then id.
    pub async fn list_facilities(&self) -> Result<Vec<FacilityRow>, StorageError> {
        let rows =
            sqlx::query("SELECT id, name, region, created_at FROM facilities ORDER BY region, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(facility_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

fn facility_row(r: &sqlx::any::AnyRow) -> Result<FacilityRow, sqlx::Error> {
    Ok(FacilityRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
    })
}
