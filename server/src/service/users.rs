//! Accounts: people with a role, and their passwords.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

use serde::{Deserialize, Serialize};

use aidsync_shared::ids::{FacilityId, UserId};
use aidsync_shared::roles::{Action, Role};

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, UserRow};

/// Shorter passwords are refused; long passphrases are welcome.
pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 1_000;
const MAX_TEXT_CHARS: usize = 200;

#[derive(Debug, Clone, Deserialize)]
pub struct NewUser {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    /// Required for a receiver, refused for anyone else.
    #[serde(default)]
    pub facility: Option<FacilityId>,
    /// A coordinator's region; `None` means every region.
    #[serde(default)]
    pub region: Option<String>,
}

/// `POST /api/v1/users`: a new user, with a password or without one (then
/// a strong one is generated and returned once).
#[derive(Debug, Clone, Deserialize)]
pub struct CreateUser {
    #[serde(flatten)]
    pub user: NewUser,
    #[serde(default)]
    pub password: Option<String>,
}

/// A user just created or whose password was just reset, with the password
/// if the server generated it (shown this once, never stored in clear).
#[derive(Debug, Clone, Serialize)]
pub struct WithPassword {
    #[serde(flatten)]
    pub user: UserRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The password to set, and whether the server generated it.
fn chosen_or_generated(password: Option<String>) -> (String, bool) {
    match password {
        Some(p) => (p, false),
        None => (generate_password(), true),
    }
}

/// Adds a user on behalf of an admin.
pub async fn create(
    db: &Db,
    caller: &Caller,
    req: CreateUser,
    now_ms: i64,
) -> Result<WithPassword, AppError> {
    caller.require(Action::Administer)?;
    let (password, generated) = chosen_or_generated(req.password);
    let user = add(db, req.user, &password, now_ms).await?;
    Ok(WithPassword {
        user,
        password: generated.then_some(password),
    })
}

/// Every user, for an admin.
pub async fn list(db: &Db, caller: &Caller) -> Result<Vec<UserRow>, AppError> {
    caller.require(Action::Administer)?;
    Ok(db.list_users().await?)
}

/// Replaces a user's password on behalf of an admin.
pub async fn reset(
    db: &Db,
    caller: &Caller,
    id: &UserId,
    password: Option<String>,
    now_ms: i64,
) -> Result<WithPassword, AppError> {
    caller.require(Action::Administer)?;
    let (password, generated) = chosen_or_generated(password);
    reset_password(db, id, &password, now_ms).await?;
    let user = db
        .user(id.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user {id}")))?;
    Ok(WithPassword {
        user,
        password: generated.then_some(password),
    })
}

/// Adds a user with `password`.
pub async fn add(db: &Db, new: NewUser, password: &str, now_ms: i64) -> Result<UserRow, AppError> {
    let bad = |m: String| Err(AppError::Unprocessable(m));
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TEXT_CHARS {
        return bad(format!("name: must be 1 to {MAX_TEXT_CHARS} characters"));
    }
    match (new.role, &new.facility, &new.region) {
        (Role::Receiver, None, _) => {
            return bad("facility: a receiver belongs to one facility".into());
        }
        (Role::Receiver, Some(_), Some(_)) | (Role::Admin, _, Some(_)) => {
            return bad("region: only coordinators have a region".into());
        }
        (Role::Coordinator | Role::Admin, Some(_), _) => {
            return bad("facility: only receivers belong to a facility".into());
        }
        _ => {}
    }
    if let Some(region) = &new.region
        && (region.trim().is_empty() || region.chars().count() > MAX_TEXT_CHARS)
    {
        return bad(format!("region: must be 1 to {MAX_TEXT_CHARS} characters"));
    }
    if let Some(facility) = &new.facility {
        super::facilities::require(db, "facility", facility).await?;
    }
    let hash = hash_password(password)?;
    let row = UserRow {
        id: new.id.to_string(),
        name: name.to_owned(),
        role: new.role.as_str().to_owned(),
        facility_id: new.facility.as_ref().map(ToString::to_string),
        region: new.region.map(|r| r.trim().to_owned()),
        created_at: now_ms,
        disabled_at: None,
    };
    if !db.insert_user(&row, &hash).await? {
        return Err(AppError::Conflict(format!(
            "user {} already exists",
            row.id
        )));
    }
    tracing::info!(user = %row.id, role = %row.role, "user added");
    Ok(row)
}

/// Replaces a user's password.
/// Replaces a user's password and revokes every device they are logged in
/// on: a reset usually means the old password leaked. Their phones keep
/// what they have not synced and upload it after the next login.
pub async fn reset_password(
    db: &Db,
    id: &UserId,
    password: &str,
    now_ms: i64,
) -> Result<(), AppError> {
    let hash = hash_password(password)?;
    if !db.set_password_hash(id.as_str(), &hash).await? {
        return Err(AppError::NotFound(format!("no user {id}")));
    }
    let revoked = db.revoke_user_devices(id.as_str(), now_ms).await?;
    tracing::info!(user = %id, revoked, "password reset; devices logged out");
    Ok(())
}

/// argon2id with the crate's recommended parameters, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AppError::Unprocessable(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AppError::Unprocessable(format!(
            "password: at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches a stored PHC string. A malformed stored hash
/// matches nothing.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A password to hand to a person once: 20 characters from an alphabet
/// without look-alikes (≈ 115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").ok();
        let hash = hash.as_deref().unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery", hash));
        assert!(!verify_password("correct horse battery!", hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // Same password, fresh salt: a different hash.
        assert_ne!(
            hash_password("correct horse battery").ok().as_deref(),
            Some(hash)
        );
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            hash_password("short"),
            Err(AppError::Unprocessable(_))
        ));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.chars().count(), 20);
        assert_ne!(a, b);
        assert!(hash_password(&a).is_ok());
    }
}
