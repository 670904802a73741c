//! The audit trail for admins: which changes a user or a device sent.

use crate::error::AppError;
use crate::storage::{ChangeFilter, ChangeRow, Db};

/// Most rows one listing returns.
pub const MAX_ROWS: i64 = 10_000;

/// Accepted changes, newest first, filtered by user and/or device.
pub async fn changes(
    db: &Db,
    user: Option<String>,
    device: Option<String>,
    limit: Option<i64>,
) -> Result<Vec<ChangeRow>, AppError> {
    let limit = limit.unwrap_or(1_000);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: between 1 and {MAX_ROWS}"
        )));
    }
    Ok(db
        .list_changes(&ChangeFilter {
            user,
            device,
            limit,
        })
        .await?)
}
