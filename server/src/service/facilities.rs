//! Facilities: the hospitals shipments go to and receivers work at.

use serde::Deserialize;

use aidsync_shared::ids::FacilityId;
use aidsync_shared::roles::{Action, Role};

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, FacilityRow};

const MAX_TEXT_CHARS: usize = 200;

#[derive(Debug, Clone, Deserialize)]
pub struct NewFacility {
    pub id: FacilityId,
    pub name: String,
    pub region: String,
}

/// Adds a facility on behalf of `caller`: admins only, since a facility
/// and its region decide who sees which shipments.
pub async fn create(
    db: &Db,
    caller: &Caller,
    new: NewFacility,
    now_ms: i64,
) -> Result<FacilityRow, AppError> {
    caller.require(Action::Administer)?;
    add(db, new, now_ms).await
}

/// Adds a facility (the admin command's path: no caller).
pub async fn add(db: &Db, new: NewFacility, now_ms: i64) -> Result<FacilityRow, AppError> {
    for (field, value) in [("name", &new.name), ("region", &new.region)] {
        if value.trim().is_empty() {
            return Err(AppError::Unprocessable(format!(
                "{field}: must not be empty"
            )));
        }
        if value.chars().count() > MAX_TEXT_CHARS {
            return Err(AppError::Unprocessable(format!(
                "{field}: longer than {MAX_TEXT_CHARS} characters"
            )));
        }
    }
    let row = FacilityRow {
        id: new.id.to_string(),
        name: new.name.trim().to_owned(),
        region: new.region.trim().to_owned(),
        created_at: now_ms,
    };
    if !db.insert_facility(&row).await? {
        return Err(AppError::Conflict(format!(
            "facility {} already exists",
            row.id
        )));
    }
    tracing::info!(facility = %row.id, region = %row.region, "facility added");
    Ok(row)
}

/// Facilities the caller may see: a receiver its own, a coordinator those
/// of their region (or all), an admin all (to manage them).
pub async fn list(db: &Db, caller: &Caller) -> Result<Vec<FacilityRow>, AppError> {
    let all = db.list_facilities().await?;
    if caller.role == Role::Admin {
        return Ok(all);
    }
    let scope = caller.scope();
    Ok(all
        .into_iter()
        .filter(|f| scope.contains(&f.id, Some(&f.region)))
        .collect())
}

/// The facility `id` names, or a 422 saying it does not exist.
pub async fn require(db: &Db, field: &str, id: &FacilityId) -> Result<FacilityRow, AppError> {
    db.facility(id.as_str()).await?.ok_or_else(|| {
        AppError::Unprocessable(format!(
            "{field}: there is no facility {id}; an administrator must add it first"
        ))
    })
}
