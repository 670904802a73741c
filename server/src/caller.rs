//! The request context: who is calling.
//!
//! Today a caller is a registered device presenting its bearer token; the
//! device names its user and, for receivers, the one facility it serves.
//! Accounts, roles and login slot in here without touching the handlers.

use automerge::ActorId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use aidsync_shared::ids::{DeviceId, FacilityId, UserId};

use crate::app::AppState;
use crate::error::AppError;
use crate::storage::DeviceRow;

#[derive(Debug, Clone)]
pub struct Caller {
    pub device: DeviceId,
    pub user: UserId,
    /// Every change this caller sends must be signed by this actor.
    pub actor: ActorId,
    /// `Some`: sees only shipments destined to this facility.
    pub facility: Option<FacilityId>,
}

impl Caller {
    pub fn may_see(&self, facility: &str) -> bool {
        self.facility
            .as_ref()
            .is_none_or(|f| f.as_str() == facility)
    }

    fn from_row(row: DeviceRow) -> Result<Caller, AppError> {
        // Rows were validated on insert; a bad one is our bug, not the client's.
        let internal = |e: &dyn std::fmt::Display| {
            AppError::Internal(anyhow::anyhow!("device {}: {e}", row.id))
        };
        Ok(Caller {
            device: DeviceId::parse(&row.id).map_err(|e| internal(&e))?,
            user: UserId::parse(&row.user_id).map_err(|e| internal(&e))?,
            actor: ActorId::try_from(row.actor_id.as_str()).map_err(|e| internal(&e))?,
            facility: row
                .facility_id
                .as_deref()
                .map(FacilityId::parse)
                .transpose()
                .map_err(|e| internal(&e))?,
        })
    }
}

/// Tokens are stored only as this hash: a leaked database does not leak
/// working tokens. Tokens are 128 random bits, so no slow hash is needed.
pub fn token_hash(token: &str) -> String {
    aidsync_shared::ids::to_hex(&Sha256::digest(token.as_bytes()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthorized)?;
        let row = state
            .db
            .device_by_token_hash(&token_hash(token))
            .await?
            .ok_or(AppError::Unauthorized)?;
        if row.revoked_at.is_some() {
            return Err(AppError::Unauthorized);
        }
        Caller::from_row(row)
    }
}
