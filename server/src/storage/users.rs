//! The users table. Password hashes are written and read only through the
//! two methods that need them; listings never carry them.

use sqlx::Row;

use super::{Db, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub facility_id: Option<String>,
    pub region: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

impl Db {
    /// Inserts a user; `Ok(false)` if the id is taken.
    pub async fn insert_user(
        &self,
        user: &UserRow,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO users (id, name, role, facility_id, region, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.facility_id)
        .bind(&user.region)
        .bind(password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a password hash; `Ok(false)` if there is no such user.
    pub async fn set_password_hash(
        &self,
        id: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A user and their password hash, for checking a login.
    pub async fn user_with_hash(
        &self,
        id: &str,
    ) -> Result<Option<(UserRow, String)>, StorageError> {
        let row = sqlx::query(
            "SELECT id, name, role, facility_id, region, created_at, disabled_at, password_hash
             FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((user_row(&r)?, r.try_get("password_hash")?)))
            .transpose()?)
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, StorageError> {
        let row = sqlx::query(
            "SELECT id, name, role, facility_id, region, created_at, disabled_at
             FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    /// Every user, by role then id.
    pub async fn list_users(&self) -> Result<Vec<UserRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, name, role, facility_id, region, created_at, disabled_at
             FROM users ORDER BY role, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(user_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

fn user_row(r: &sqlx::any::AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        facility_id: r.try_get("facility_id")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}
