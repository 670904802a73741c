//! Logging in and out. A login checks the password (argon2id, off the async
//! threads: it is slow on purpose) and registers a device; logging out
//! revokes the calling device.

use serde::{Deserialize, Serialize};

use aidsync_shared::ids::UserId;

use super::devices;
use super::users::verify_password;
use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, DeviceRow, UserRow};

#[derive(Debug, Clone, Deserialize)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
    /// Shown to admins when they list devices, e.g. "Anna's phone".
    #[serde(default)]
    pub device_name: String,
}

/// A user as they may see themselves (no password hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub role: String,
    pub facility: Option<String>,
    /// The facility's name, for screens (the phone keeps it for offline).
    pub facility_name: Option<String>,
    pub region: Option<String>,
}

impl Account {
    async fn of(db: &Db, u: UserRow) -> Result<Account, AppError> {
        let facility_name = match &u.facility_id {
            Some(id) => db.facility(id).await?.map(|f| f.name),
            None => None,
        };
        Ok(Account {
            id: u.id,
            name: u.name,
            role: u.role,
            facility: u.facility_id,
            facility_name,
            region: u.region,
        })
    }
}

/// What a login returns. The token is shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub device_id: String,
    /// Hex automerge actor id the device must sign its changes with.
    pub actor_id: String,
    /// When the token stops working (ms since epoch); log in again after.
    pub expires_at: i64,
    pub user: Account,
}

/// Checks the password and registers a device. An unknown user, a wrong
/// password and a disabled account are the same error, and take the same
/// time, so a login reveals nothing about which accounts exist.
pub async fn login(
    db: &Db,
    req: LoginRequest,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<Session, AppError> {
    let found = match UserId::parse(req.user.trim()) {
        Ok(id) => db.user_with_hash(id.as_str()).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, dummy_hash().to_owned()),
    };
    let password = req.password;
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password check: {e}")))?;
    let user = match user {
        Some(u) if matches && u.disabled_at.is_none() => u,
        _ => return Err(AppError::BadCredentials),
    };
    let (device, token) = devices::create(db, &user, &req.device_name, ttl_ms, now_ms).await?;
    Ok(Session {
        token,
        device_id: device.id,
        actor_id: device.actor_id,
        expires_at: device.expires_at,
        user: Account::of(db, user).await?,
    })
}

/// A valid argon2id hash of a password nobody knows, verified against when
/// the user does not exist so that case costs as much as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        super::users::hash_password(&super::devices::new_token()).unwrap_or_default()
    })
}

/// Revokes the calling device.
pub async fn logout(db: &Db, caller: &Caller, now_ms: i64) -> Result<DeviceRow, AppError> {
    devices::revoke(db, caller.device.as_str(), now_ms).await
}

/// Who the caller is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Me {
    pub user: Account,
    pub device_id: String,
    pub actor_id: String,
    pub expires_at: i64,
}

pub async fn me(db: &Db, caller: &Caller) -> Result<Me, AppError> {
    let user = db
        .user(caller.user.as_str())
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok(Me {
        user: Account::of(db, user).await?,
        device_id: caller.device.to_string(),
        actor_id: caller.actor.to_hex_string(),
        expires_at: caller.expires_at,
    })
}
