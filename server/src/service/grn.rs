//! Goods-received notes: the content derived in `aidsync_shared::grn`,
//! with the thumbnails the server holds, rendered as PDF.

use std::collections::HashMap;
use std::sync::Arc;

use aidsync_shared::grn::{GrnError, goods_received_note};
use aidsync_shared::ids::{DeliveryId, ShipmentId};

use crate::caller::Caller;
use crate::error::AppError;
use crate::pdf::grn::{GrnContext, Thumbnail, render};
use crate::storage::Db;

/// Notes written at once: each decodes thumbnails and lays out pages on a
/// blocking thread, a few hundred milliseconds of one core.
static RENDERING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The note for one delivery of a shipment (with the deliveries it
/// corrects), or for the whole shipment, as PDF bytes. Scoped like the
/// shipment: one the caller may not see is a 404, like an unknown one.
pub async fn pdf(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    delivery: Option<&DeliveryId>,
    now_ms: i64,
) -> Result<Vec<u8>, AppError> {
    let (shipment, facility_name) = super::shipments::read_visible(db, caller, id).await?;
    let note = goods_received_note(&shipment, delivery).map_err(|e| match e {
        GrnError::UnknownDelivery(_) => AppError::NotFound(e.to_string()),
    })?;

    let mut thumbnails = HashMap::new();
    for a in note.signatures.iter().chain(&note.photos) {
        let Some(file) = a.file() else { continue };
        if thumbnails.contains_key(&file.sha256) || !file.media_type.starts_with("image/") {
            continue;
        }
        // Not uploaded yet (404): the note says so beside the caption.
        match super::attachments::thumbnail(db, caller, &file.sha256).await {
            Ok(jpeg) => {
                if let Some(t) = thumbnail(jpeg) {
                    thumbnails.insert(file.sha256.clone(), t);
                }
            }
            Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let _permit = RENDERING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("render semaphore: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let cx = GrnContext {
            facility_name: facility_name.as_deref(),
            thumbnails: &thumbnails,
            now_ms,
        };
        render(&note, &cx)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("render task: {e}")))?
    .map_err(|e| AppError::Internal(e.into()))
}

/// A thumbnail the server made (a JPEG), with its pixel size read from
/// its header.
fn thumbnail(jpeg: Vec<u8>) -> Option<Thumbnail> {
    let (width, height) =
        image::ImageReader::with_format(std::io::Cursor::new(&jpeg), image::ImageFormat::Jpeg)
            .into_dimensions()
            .ok()?;
    Some(Thumbnail {
        jpeg: Arc::new(jpeg),
        width,
        height,
    })
}
