//! Hand-carried sync: a coordinator uploads the file a phone wrote with no
//! network for weeks (`aidsync_shared::sync::carry`), and the server
//! checks and stores it exactly as a sync from the device that wrote it:
//! that device's user's role and scope, not the courier's. Stored changes
//! are skipped, so a file imported twice changes nothing the second time.

use serde::Serialize;

use aidsync_shared::ids::{DeviceId, ShipmentId, UserId};
use aidsync_shared::roles::Action;
use aidsync_shared::sync::carry::{CarriedFile, CarryError};
use aidsync_shared::sync::protocol::{SyncRequest, UploadResult, decode};

use super::Limits;
use crate::caller::Caller;
use crate::error::AppError;
use crate::events::Changed;
use crate::storage::Db;

/// What an import did, document by document.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The device that wrote the file, and its user.
    pub device: DeviceId,
    pub user: UserId,
    /// When the phone wrote it (ms since the epoch).
    pub created_at: i64,
    /// Records waiting on the phone when it wrote the file.
    pub pending: u64,
    /// Documents whose changes were stored (new ones, or all already there).
    pub accepted: usize,
    /// Documents whose changes were refused (the reason is beside each).
    pub refused: usize,
    /// Changes stored now for the first time, over all documents.
    pub new_changes: u64,
    pub documents: Vec<ImportedDocument>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportedDocument {
    pub id: ShipmentId,
    #[serde(flatten)]
    pub upload: UploadResult,
}

/// Imports a carried file. `courier` is the coordinator uploading it
/// (`None`: `aidsync admin` on the server's own machine). Refused whole,
/// storing nothing, if it is not a carried file, was changed on the way
/// (its signature does not match the device's key), or names a device
/// that does not exist, was revoked, or whose user is disabled. A device
/// whose token merely expired is trusted: weeks offline is what files are
/// for.
pub async fn import(
    db: &Db,
    courier: Option<&Caller>,
    bytes: &[u8],
    limits: &Limits,
    now_ms: i64,
) -> Result<(ImportReport, Vec<Changed>), AppError> {
    if let Some(courier) = courier {
        courier.require(Action::ManageShipments)?;
    }
    let file = CarriedFile::read(bytes).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let refused = |why: String| AppError::Unprocessable(why);
    let (row, token_hash) = db.carrier(file.device.as_str()).await?.ok_or_else(|| {
        refused(format!(
            "device {} is not known to this server",
            file.device
        ))
    })?;
    let key = hex_key(&token_hash).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("device {}: bad token hash", file.device))
    })?;
    file.verify(&key)
        .map_err(|e: CarryError| refused(e.to_string()))?;
    if row.revoked_at.is_some() {
        return Err(refused(format!(
            "device {} was revoked (logged out, or reported lost): its file is not trusted; log in on the phone and write the file again",
            file.device
        )));
    }
    if row.disabled_at.is_some() {
        return Err(refused(format!("user {} is disabled", row.user_id)));
    }
    let signer = Caller::from_row(row)?;
    let request: SyncRequest =
        decode(&file.request).map_err(|e| refused(format!("the file's records: {e}")))?;
    let outcome = super::sync::sync(db, &signer, request, limits, now_ms).await?;
    let documents: Vec<ImportedDocument> = outcome
        .response
        .docs
        .into_iter()
        .filter_map(|d| d.upload.map(|upload| ImportedDocument { id: d.id, upload }))
        .collect();
    let accepted = documents
        .iter()
        .filter(|d| matches!(d.upload, UploadResult::Accepted { .. }))
        .count();
    let new_changes = documents
        .iter()
        .map(|d| match d.upload {
            UploadResult::Accepted { new } => u64::from(new),
            _ => 0,
        })
        .sum();
    tracing::info!(
        device = %file.device,
        courier = courier.map(|c| c.user.as_str()).unwrap_or("aidsync admin"),
        accepted,
        new_changes,
        "hand-carried file imported"
    );
    let report = ImportReport {
        device: file.device,
        user: signer.user,
        created_at: file.created_at,
        pending: file.pending,
        refused: documents.len() - accepted,
        accepted,
        new_changes,
        documents,
    };
    Ok((report, outcome.changed))
}

/// A stored token hash (64 hex digits) as the 32-byte key it is.
fn hex_key(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        key[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(key)
}
