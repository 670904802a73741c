//! Registering devices: each gets an id, an automerge actor id and a token.

use automerge::ActorId;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use aidsync_shared::ids::{DeviceId, FacilityId, UserId, id_from_random, to_hex};

use crate::caller::token_hash;
use crate::error::AppError;
use crate::storage::{Db, DeviceRow};

#[derive(Debug, Clone, Deserialize)]
pub struct RegisterDevice {
    pub user: UserId,
    /// The facility a receiver's phone serves; omit for a coordinator.
    #[serde(default)]
    pub facility: Option<FacilityId>,
    #[serde(default)]
    pub name: String,
}

/// Returned once: the token is not stored and cannot be shown again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredDevice {
    pub device_id: DeviceId,
    pub user: UserId,
    pub facility: Option<FacilityId>,
    /// Hex automerge actor id the device must sign its changes with.
    pub actor_id: String,
    pub token: String,
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b
}

pub async fn register(
    db: &Db,
    req: RegisterDevice,
    now_ms: i64,
) -> Result<RegisteredDevice, AppError> {
    if req.name.chars().count() > 200 {
        return Err(AppError::Unprocessable(
            "name: longer than 200 characters".into(),
        ));
    }
    if let Some(facility) = &req.facility {
        super::facilities::require(db, "facility", facility).await?;
    }
    let device_id = DeviceId::parse(id_from_random(random16()))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("device id: {e}")))?;
    let actor_id = ActorId::from(random16()).to_hex_string();
    let token = to_hex(&[random16(), random16()].concat());
    let row = DeviceRow {
        id: device_id.to_string(),
        user_id: req.user.to_string(),
        facility_id: req.facility.as_ref().map(ToString::to_string),
        name: req.name,
        actor_id: actor_id.clone(),
        created_at: now_ms,
        revoked_at: None,
    };
    db.insert_device(&row, &token_hash(&token)).await?;
    tracing::info!(device = %device_id, user = %req.user, "device registered");
    Ok(RegisteredDevice {
        device_id,
        user: req.user,
        facility: req.facility,
        actor_id,
        token,
    })
}
