//! Facilities: the hospitals shipments go to and receivers work at.

use serde::Deserialize;

use aidsync_shared::ids::FacilityId;

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

/// Adds a facility on behalf of `caller`: coordinators only, since a
/// facility decides who sees which shipments.
pub async fn create(
    db: &Db,
    caller: &Caller,
    new: NewFacility,
    now_ms: i64,
) -> Result<FacilityRow, AppError> {
    if caller.facility.is_some() {
        return Err(AppError::Forbidden(
            "only coordinators may add facilities".into(),
        ));
    }
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

/// Facilities the caller may see: a receiver its own, a coordinator all.
pub async fn list(db: &Db, caller: &Caller) -> Result<Vec<FacilityRow>, AppError> {
    let all = db.list_facilities().await?;
    Ok(all.into_iter().filter(|f| caller.may_see(&f.id)).collect())
}

/// Refuses a facility id that names no facility.
pub async fn require(db: &Db, field: &str, id: &FacilityId) -> Result<(), AppError> {
    match db.facility(id.as_str()).await? {
        Some(_) => Ok(()),
        None => Err(AppError::Unprocessable(format!(
            "{field}: no facility {id}; add it first (`aidsync admin facility add`)"
        ))),
    }
}
