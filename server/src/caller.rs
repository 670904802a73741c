//! The request context: who is calling.
//!
//! A caller is a device presenting its bearer token. The device belongs to
//! a user, and the user's role decides what the caller may do and which
//! shipments it may see. An unknown, expired or revoked token, or a disabled
//! user, is refused before any handler runs.

use automerge::ActorId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use aidsync_shared::ids::{DeviceId, FacilityId, UserId};
use aidsync_shared::roles::{Action, Role};

use crate::app::AppState;
use crate::error::AppError;
use crate::storage::{CallerRow, Scope};

#[derive(Debug, Clone)]
pub struct Caller {
    pub device: DeviceId,
    pub user: UserId,
    pub role: Role,
    /// A receiver's facility.
    pub facility: Option<FacilityId>,
    /// A coordinator's region; `None` for a coordinator of every region.
    pub region: Option<String>,
    /// The actor id this device signs its changes with.
    pub actor: ActorId,
    /// When the token stops working (ms since epoch).
    pub expires_at: i64,
}

impl Caller {
    /// Which shipments this caller may see.
    pub fn scope(&self) -> Scope {
        match (self.role, &self.facility, &self.region) {
            (Role::Receiver, Some(f), _) => Scope::Facility(f.to_string()),
            (Role::Coordinator, _, Some(r)) => Scope::Region(r.clone()),
            (Role::Coordinator, _, None) => Scope::All,
            // A receiver without a facility cannot exist (the schema
            // refuses it); if one did, it would see nothing.
            (Role::Receiver, None, _) | (Role::Admin, _, _) => Scope::Nothing,
        }
    }

    /// The caller's scope, or 403 for a role that sees no shipments at all
    /// (an admin), so an admin is told why rather than shown an empty list.
    pub fn shipment_scope(&self) -> Result<Scope, AppError> {
        match self.scope() {
            Scope::Nothing => Err(AppError::Forbidden(format!(
                "a {} sees no shipments; a coordinator or receiver account does",
                self.role
            ))),
            scope => Ok(scope),
        }
    }

    /// 403 unless the caller's role may do `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        self.role
            .require(action)
            .map_err(|e| AppError::Forbidden(e.to_string()))
    }

    pub(crate) fn from_row(row: CallerRow) -> Result<Caller, AppError> {
        // Rows were validated on insert; a bad one is our bug, not the client's.
        let internal = |e: &dyn std::fmt::Display| {
            AppError::Internal(anyhow::anyhow!("device {}: {e}", row.device_id))
        };
        Ok(Caller {
            device: DeviceId::parse(&row.device_id).map_err(|e| internal(&e))?,
            user: UserId::parse(&row.user_id).map_err(|e| internal(&e))?,
            role: Role::parse(&row.role).ok_or_else(|| internal(&"unknown role"))?,
            facility: row
                .facility_id
                .as_deref()
                .map(FacilityId::parse)
                .transpose()
                .map_err(|e| internal(&e))?,
            region: row.region,
            actor: ActorId::try_from(row.actor_id.as_str()).map_err(|e| internal(&e))?,
            expires_at: row.expires_at,
        })
    }
}

/// Tokens are stored only as this hash: a leaked database does not leak
/// working tokens. Tokens are 256 random bits, so no slow hash is needed.
pub fn token_hash(token: &str) -> String {
    aidsync_shared::ids::to_hex(&Sha256::digest(token.as_bytes()))
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(parts: &axum::http::HeaderMap) -> Option<&str> {
    parts
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        let row = state
            .db
            .caller_by_token_hash(&token_hash(token))
            .await?
            .ok_or(AppError::Unauthorized)?;
        // Checked on every request, so a revocation takes effect at once.
        let usable = row.revoked_at.is_none()
            && row.disabled_at.is_none()
            && state.clock.now_ms() < row.expires_at;
        if !usable {
            return Err(AppError::Unauthorized);
        }
        Caller::from_row(row)
    }
}
