//! Devices: one per login, each with its own token and automerge actor id.
//! Revoking one shuts it out at its next request; what it already synced
//! stays, attributed to it.

use automerge::ActorId;
use rand::RngCore;

use aidsync_shared::ids::{DeviceId, id_from_random, to_hex};

use crate::caller::token_hash;
use crate::error::AppError;
use crate::storage::{Db, DeviceRow, UserRow};

/// Longest device name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b
}

/// A fresh opaque token: 256 random bits as hex.
pub fn new_token() -> String {
    to_hex(&[random16(), random16()].concat())
}

/// Registers a device for `user` and returns it with its token, which is
/// not stored (only its hash is) and so is shown this once.
pub async fn create(
    db: &Db,
    user: &UserRow,
    name: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<(DeviceRow, String), AppError> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::Unprocessable(format!(
            "device_name: longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::Unprocessable(
            "device_name: contains control characters".into(),
        ));
    }
    let id = DeviceId::parse(id_from_random(random16()))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("device id: {e}")))?;
    let token = new_token();
    let row = DeviceRow {
        id: id.to_string(),
        user_id: user.id.clone(),
        facility_id: user.facility_id.clone(),
        name: name.to_owned(),
        actor_id: ActorId::from(random16()).to_hex_string(),
        created_at: now_ms,
        expires_at: now_ms.saturating_add(ttl_ms),
        revoked_at: None,
    };
    db.insert_device(&row, &token_hash(&token)).await?;
    tracing::info!(device = %row.id, user = %row.user_id, "device logged in");
    Ok((row, token))
}

/// Revokes a device: its token stops working at its next request.
pub async fn revoke(db: &Db, id: &str, now_ms: i64) -> Result<DeviceRow, AppError> {
    let row = db
        .revoke_device(id, now_ms)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no device {id}")))?;
    tracing::info!(device = %row.id, user = %row.user_id, "device revoked");
    Ok(row)
}
