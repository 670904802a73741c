//! Attachment bytes: resumable uploads and scoped downloads.
//!
//! A phone syncs its records first; each record names its files by SHA-256.
//! Then it uploads each file in chunks: it asks how many bytes the server
//! holds ([`upload_status`]) and sends the rest from there
//! ([`upload_chunk`]), so an upload cut by a power failure or a lost
//! response resumes where it stopped instead of starting again. The last
//! chunk is verified against the hash before the file is stored; a file
//! stored once is never uploaded again, whoever attaches it next.
//!
//! Who may do what follows the shipments: a content may be uploaded only by
//! a receiver who may see a shipment whose records name its hash, and read
//! only by someone who may see such a shipment at a facility where someone
//! uploaded the bytes. Knowing a hash is not enough (hashes travel in every
//! document and export): a record at another facility naming the same
//! content gets the file once a receiver there uploads it too — verified,
//! not stored twice. Anything else, an unknown hash included, is a 404, so
//! nobody learns which files exist elsewhere. Each uploader has an upload
//! of their own, so nobody can block or spoil someone else's.

use serde::Serialize;
use sha2::{Digest, Sha256};

use aidsync_shared::model::is_sha256_hex;
use aidsync_shared::projection::AttachmentRow;
use aidsync_shared::roles::Action;

use super::{DAY_MS, Limits};
use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Blob, Db};

/// Where an upload stands, as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadStatus {
    pub sha256: String,
    /// Bytes the server holds: the next chunk starts here.
    pub offset: u64,
    /// The file's length, once known (from the first chunk, or the stored file).
    pub size: Option<u64>,
    /// Stored and verified: nothing left to send.
    pub complete: bool,
}

/// One chunk as the phone sends it.
pub struct Chunk<'a> {
    /// Where the chunk starts in the file (`Upload-Offset`).
    pub offset: u64,
    /// The whole file's length (`Upload-Length`).
    pub total: u64,
    pub bytes: &'a [u8],
}

/// The files with this content the caller may see; 404 if none.
async fn visible(db: &Db, caller: &Caller, sha256: &str) -> Result<Vec<AttachmentRow>, AppError> {
    if !is_sha256_hex(sha256) {
        return Err(AppError::BadRequest(format!(
            "{:?} is not a SHA-256 digest (64 lowercase hex digits)",
            sha256.chars().take(80).collect::<String>()
        )));
    }
    let scope = caller.shipment_scope()?;
    let rows = db.attachments_of_blob(&scope, sha256).await?;
    if rows.is_empty() {
        return Err(AppError::NotFound(format!(
            "no attachment you can see has content {sha256}; sync the record that attaches it first"
        )));
    }
    Ok(rows)
}

/// Whether the caller's side already has the file: for a receiver, their
/// facility uploaded it; for a coordinator, it is readable in their scope.
async fn has_file(db: &Db, caller: &Caller, sha256: &str) -> Result<bool, AppError> {
    Ok(match &caller.facility {
        Some(facility) => db.blob_granted(sha256, facility.as_str()).await?,
        None => db.blob_readable(&caller.shipment_scope()?, sha256).await?,
    })
}

/// How far the caller's upload of `sha256` has come.
pub async fn upload_status(
    db: &Db,
    caller: &Caller,
    sha256: &str,
) -> Result<UploadStatus, AppError> {
    visible(db, caller, sha256).await?;
    if has_file(db, caller, sha256).await?
        && let Some(size) = db.blob_size(sha256).await?
    {
        return Ok(complete(sha256, size));
    }
    let progress = db.upload_progress(sha256, caller.user.as_str()).await?;
    Ok(UploadStatus {
        sha256: sha256.to_owned(),
        offset: to_u64(progress.received),
        size: progress.total.map(to_u64),
        complete: false,
    })
}

fn complete(sha256: &str, size: i64) -> UploadStatus {
    UploadStatus {
        sha256: sha256.to_owned(),
        offset: to_u64(size),
        size: Some(to_u64(size)),
        complete: true,
    }
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Appends one chunk to the caller's upload of `sha256`, and when the chunk
/// completes it and the bytes match the hash, stores the file (or, if it is
/// stored already, lets the caller's facility show it). A chunk that does
/// not start where the upload stands is a 409 (ask for the status and
/// resume from its offset); a length the records do not declare a 400; a
/// file over the size limit a 413; over the caller's daily allowance a
/// 429; bytes that do not match their hash (or their file type) a 422,
/// after which the upload starts again from zero.
pub async fn upload_chunk(
    db: &Db,
    caller: &Caller,
    sha256: &str,
    chunk: Chunk<'_>,
    limits: &Limits,
    now_ms: i64,
) -> Result<UploadStatus, AppError> {
    caller.require(Action::RecordReceipts)?;
    let rows = visible(db, caller, sha256).await?;
    let Some(facility) = caller.facility.as_ref().map(|f| f.as_str().to_owned()) else {
        return Err(AppError::Forbidden(
            "only a receiver of a facility uploads attachments".into(),
        ));
    };
    if chunk.total > limits.max_attachment_bytes {
        return Err(AppError::PayloadTooLarge(format!(
            "the file has {} bytes; this server takes attachments of up to {} bytes",
            chunk.total, limits.max_attachment_bytes
        )));
    }
    if !rows.iter().any(|r| r.size == Some(to_i64(chunk.total))) {
        return Err(AppError::BadRequest(format!(
            "Upload-Length {} is not the size the record attaching this file declares",
            chunk.total
        )));
    }
    let len = chunk.bytes.len() as u64;
    if len == 0 {
        return Err(AppError::BadRequest("the chunk is empty".into()));
    }
    if chunk.offset.saturating_add(len) > chunk.total {
        return Err(AppError::BadRequest(format!(
            "the chunk ({len} bytes at offset {}) goes past Upload-Length {}",
            chunk.offset, chunk.total
        )));
    }
    let user = caller.user.as_str();
    let mut tx = db.begin_write().await?;
    if db.blob_granted(sha256, &facility).await? {
        tx.commit().await?;
        return Ok(complete(sha256, to_i64(chunk.total)));
    }
    tx.drop_stale_uploads(now_ms).await?;
    let progress = tx.upload_progress(sha256, user).await?;
    if let Some(total) = progress.total
        && to_u64(total) != chunk.total
    {
        // Only the caller's own earlier upload can differ: start afresh.
        tx.take_chunks(sha256, user).await?;
        tx.commit().await?;
        return Err(AppError::Conflict(format!(
            "your earlier upload of this content declared Upload-Length {total}; \
             it is discarded: resume from offset 0"
        )));
    }
    if to_u64(progress.received) != chunk.offset {
        return Err(AppError::Conflict(format!(
            "the server holds {} bytes of this file; resume from offset {}",
            progress.received, progress.received
        )));
    }
    let per_day = limits.attachment_bytes_per_user_per_day;
    let used = tx.add_uploaded(user, now_ms / DAY_MS, to_i64(len)).await?;
    if per_day > 0 && to_u64(used) > per_day {
        return Err(AppError::TooManyRequests {
            message: format!(
                "you have uploaded {per_day} bytes of attachments today, this server's daily limit"
            ),
            retry_after_secs: ((DAY_MS - now_ms.rem_euclid(DAY_MS)) / 1000).max(1) as u64,
        });
    }
    let appended = tx
        .append_chunk(
            sha256,
            to_i64(chunk.offset),
            to_i64(chunk.total),
            chunk.bytes,
            user,
            now_ms,
        )
        .await;
    match appended {
        Ok(()) => {}
        // A retry racing its own first attempt (its answer was slow, not
        // lost) on PostgreSQL: the other one stored this chunk.
        Err(crate::storage::StorageError::Sqlx(sqlx::Error::Database(e)))
            if e.is_unique_violation() =>
        {
            return Err(AppError::Conflict(
                "another request stored this chunk just now; ask where the upload stands and resume"
                    .into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let received = chunk.offset + len;
    if received < chunk.total {
        tx.commit().await?;
        return Ok(UploadStatus {
            sha256: sha256.to_owned(),
            offset: received,
            size: Some(chunk.total),
            complete: false,
        });
    }
    let bytes = tx.take_chunks(sha256, user).await?;
    if bytes.len() as u64 != chunk.total {
        // Two of the caller's own requests interleaved: start afresh.
        tx.commit().await?;
        return Err(AppError::Conflict(
            "the chunks do not add up to the file; resume from offset 0".into(),
        ));
    }
    let (bytes, refusal) = tokio::task::spawn_blocking({
        let sha256 = sha256.to_owned();
        move || {
            let refusal = check_content(&sha256, &bytes, &rows);
            (bytes, refusal)
        }
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing task: {e}")))?;
    if let Some(reason) = refusal {
        // The chunks are gone: the next attempt starts from zero.
        tx.commit().await?;
        tracing::warn!(sha256, user, %reason, "attachment refused");
        return Err(AppError::Unprocessable(reason));
    }
    if !tx.blob_exists(sha256).await? {
        let media_type = sniff(&bytes).unwrap_or_default().to_owned();
        tx.insert_blob(sha256, &Blob { media_type, bytes }, user, now_ms)
            .await?;
    }
    tx.grant_blob(sha256, &facility, now_ms).await?;
    tx.commit().await?;
    tracing::info!(sha256, user, size = chunk.total, "attachment stored");
    Ok(complete(sha256, to_i64(chunk.total)))
}

/// Why uploaded bytes cannot be the file the records name, if they cannot:
/// another hash, or content of another type than the records say (an HTML
/// page uploaded as a "photo" would be served as one).
fn check_content(sha256: &str, bytes: &[u8], rows: &[AttachmentRow]) -> Option<String> {
    let actual = aidsync_shared::ids::to_hex(&Sha256::digest(bytes));
    if actual != sha256 {
        return Some(format!(
            "the uploaded bytes have SHA-256 {actual}, not {sha256}: the file changed or was \
             damaged on the way; upload it again from the start"
        ));
    }
    let declared = rows.iter().find_map(|r| r.media_type.as_deref())?;
    if sniff(bytes) != Some(declared) {
        return Some(format!(
            "the uploaded bytes are not a {declared} file, as the record attaching them says"
        ));
    }
    None
}

/// The media type the first bytes of a file show, among those attachments
/// may have.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes[..bytes.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        // PDF readers accept the marker anywhere in the first kilobyte.
        Some("application/pdf")
    } else {
        None
    }
}

/// A stored file the caller may see; 404 if they may not, or if it has not
/// been uploaded yet.
pub async fn download(db: &Db, caller: &Caller, sha256: &str) -> Result<Blob, AppError> {
    visible(db, caller, sha256).await?;
    let readable = db.blob_readable(&caller.shipment_scope()?, sha256).await?;
    let blob = if readable {
        db.blob(sha256).await?
    } else {
        None
    };
    blob.ok_or_else(|| {
        AppError::NotFound(format!(
            "the file {sha256} has not reached the server yet; the phone that attached it uploads it when it can"
        ))
    })
}

/// Longest side of a thumbnail, in pixels: a dashboard row's preview.
pub const THUMBNAIL_PIXELS: u32 = 320;

/// Images decoded at once: decoding a phone photo takes a core for tens of
/// milliseconds, and a dashboard opening a shipment asks for all of its
/// thumbnails together.
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A JPEG at most [`THUMBNAIL_PIXELS`] on its longer side, of a stored
/// image the caller may see: made on first request, then kept. A PDF has
/// none (404: the dashboard shows a document icon).
pub async fn thumbnail(db: &Db, caller: &Caller, sha256: &str) -> Result<Vec<u8>, AppError> {
    visible(db, caller, sha256).await?;
    if let Some(bytes) = db.thumbnail(sha256).await? {
        return Ok(bytes);
    }
    let blob = download(db, caller, sha256).await?;
    if !blob.media_type.starts_with("image/") {
        return Err(AppError::NotFound(format!(
            "a {} has no thumbnail; download the file",
            blob.media_type
        )));
    }
    let made = {
        let _permit = DECODING
            .acquire()
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("thumbnail semaphore: {e}")))?;
        tokio::task::spawn_blocking(move || make_thumbnail(&blob.bytes))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("thumbnail task: {e}")))?
    };
    let bytes = made
        .map_err(|e| AppError::Unprocessable(format!("the stored image cannot be decoded: {e}")))?;
    db.put_thumbnail(sha256, &bytes).await?;
    Ok(bytes)
}

/// Decodes an image within limits (a hostile file may claim any size),
/// turns it upright as its EXIF orientation says, shrinks it and encodes
/// it as JPEG.
pub fn make_thumbnail(bytes: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    use image::{DynamicImage, ImageDecoder, ImageReader};
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    let small = image
        .thumbnail(THUMBNAIL_PIXELS, THUMBNAIL_PIXELS)
        .to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&small)?;
    Ok(out)
}

/// One file in an export's `index.csv`: what a donor needs to match it to
/// a receipt.
#[derive(Debug, Clone, Default, Serialize)]
struct IndexRow {
    /// The file's name inside the ZIP; empty if it is not on the server.
    file: String,
    shipment_id: String,
    reference: String,
    attachment_id: String,
    kind: String,
    receipt_id: Option<String>,
    line_id: Option<String>,
    item: Option<String>,
    condition: Option<String>,
    quantity: Option<u64>,
    serials: Vec<String>,
    caption: String,
    signer_name: Option<String>,
    signer_role: Option<String>,
    recorded_by: String,
    recorded_at: i64,
    media_type: Option<String>,
    size: Option<i64>,
    sha256: Option<String>,
    removed: bool,
    on_server: bool,
}

/// Most bytes of files one export may hold: the ZIP is built in memory.
/// A coordinator who needs more narrows the filter (413 says so).
pub const MAX_EXPORT_BYTES: u64 = 512 * 1024 * 1024;

/// What an export collects: the files (name in the ZIP, bytes) and the
/// index, and the bytes so far.
#[derive(Default)]
struct Export {
    files: Vec<(String, std::sync::Arc<Vec<u8>>)>,
    /// Each content read once, however many records attach it.
    loaded: std::collections::HashMap<String, std::sync::Arc<Vec<u8>>>,
    index: Vec<IndexRow>,
    bytes: u64,
}

/// Exports built at once: each holds its files in memory.
static EXPORTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A shipment's attached files as a ZIP ([`export_filtered`] for one).
/// Scoped like the shipment (404 otherwise).
pub async fn export_zip(
    db: &Db,
    caller: &Caller,
    id: &aidsync_shared::ids::ShipmentId,
) -> Result<Vec<u8>, AppError> {
    let _permit = EXPORTING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("export semaphore: {e}")))?;
    let mut export = Export::default();
    add_shipment(db, caller, id, &mut export).await?;
    finish(export).await
}

/// The attached files of every shipment a report filter selects, as one
/// ZIP with `index.csv` naming each file's shipment, receipt, line, item
/// and who recorded it. Files are stored under `<shipment>/<receipt or
/// "shipment">/<attachment id>-<kind>.<ext>`; removed files are listed
/// (and included) with `removed = yes`; files not yet uploaded are listed
/// with `on_server = no` and no file.
pub async fn export_filtered(
    db: &Db,
    caller: &Caller,
    filter: &crate::storage::ReportFilter,
) -> Result<Vec<u8>, AppError> {
    let _permit = EXPORTING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("export semaphore: {e}")))?;
    let mut export = Export::default();
    for shipment in super::reports::shipments(db, caller, filter).await? {
        let id = shipment
            .id
            .parse()
            .map_err(|e: aidsync_shared::ids::IdError| {
                AppError::Internal(anyhow::anyhow!("stored shipment id {}: {e}", shipment.id))
            })?;
        add_shipment(db, caller, &id, &mut export).await?;
    }
    finish(export).await
}

async fn add_shipment(
    db: &Db,
    caller: &Caller,
    id: &aidsync_shared::ids::ShipmentId,
    export: &mut Export,
) -> Result<(), AppError> {
    let detail = super::shipments::detail(db, caller, id).await?;
    let receipts: std::collections::HashMap<&str, &aidsync_shared::model::Receipt> = detail
        .receipts
        .iter()
        .map(|r| (r.receipt.id.as_str(), &r.receipt))
        .collect();
    let items: std::collections::HashMap<&str, &str> = detail
        .lines
        .iter()
        .map(|l| (l.id.as_str(), l.item.as_str()))
        .collect();
    for a in detail.attachments.iter().filter(|a| a.sha256.is_some()) {
        let receipt = a.receipt_id.as_deref().and_then(|r| receipts.get(r));
        let sha256 = a.sha256.clone().unwrap_or_default();
        // Only what this shipment's facility uploaded (see the module doc).
        let granted = db
            .blob_granted(&sha256, detail.header.destination_facility.as_str())
            .await?;
        let bytes = match export.loaded.get(&sha256) {
            Some(bytes) => Some(bytes.clone()),
            None if granted => match db.blob(&sha256).await? {
                Some(blob) => {
                    export.bytes += blob.bytes.len() as u64;
                    if export.bytes > MAX_EXPORT_BYTES {
                        return Err(AppError::PayloadTooLarge(format!(
                            "the files come to more than {MAX_EXPORT_BYTES} bytes; narrow the filter"
                        )));
                    }
                    let bytes = std::sync::Arc::new(blob.bytes);
                    export.loaded.insert(sha256.clone(), bytes.clone());
                    Some(bytes)
                }
                None => None,
            },
            None => None,
        };
        let file = match (&bytes, &a.media_type) {
            (Some(_), Some(media_type)) => export_file_name(
                &a.shipment_id,
                a.receipt_id.as_deref(),
                &a.attachment_id,
                &a.kind,
                media_type,
            ),
            _ => String::new(),
        };
        if let (Some(bytes), false) = (bytes, file.is_empty()) {
            export.files.push((file.clone(), bytes));
        }
        export.index.push(IndexRow {
            shipment_id: a.shipment_id.clone(),
            reference: detail.header.reference.clone(),
            attachment_id: a.attachment_id.clone(),
            kind: a.kind.clone(),
            receipt_id: a.receipt_id.clone(),
            line_id: receipt.map(|r| r.line_id.to_string()),
            item: receipt.and_then(|r| items.get(r.line_id.as_str()).map(|i| (*i).to_owned())),
            condition: receipt.map(|r| r.condition.as_str().to_owned()),
            quantity: receipt.map(|r| r.quantity),
            serials: receipt.map(|r| r.serials.clone()).unwrap_or_default(),
            caption: a.note.clone(),
            signer_name: a.signer_name.clone(),
            signer_role: a.signer_role.clone(),
            recorded_by: a.recorded_by.clone(),
            recorded_at: a.recorded_at,
            media_type: a.media_type.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
            removed: a.removed,
            on_server: !file.is_empty(),
            file,
        });
    }
    Ok(())
}

async fn finish(export: Export) -> Result<Vec<u8>, AppError> {
    let (columns, rows) = if export.index.is_empty() {
        // No files still means a header, so the index says what it would hold.
        let (columns, _) = super::export::rows_table(&[IndexRow::default()])?;
        (columns, Vec::new())
    } else {
        super::export::rows_table(&export.index)?
    };
    let csv = super::export::csv_table(&columns, rows)?;
    let files = export.files;
    tokio::task::spawn_blocking(move || write_zip(csv, files))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("export task: {e}")))?
}

/// An attached file's name in an export, and where the donor's report
/// points to it: `<shipment>/<receipt id, or "shipment">/<attachment
/// id>-<kind>.<extension>`. Ids are letters, digits, `-` and `_`: safe as
/// path parts.
pub fn export_file_name(
    shipment: &str,
    receipt: Option<&str>,
    attachment: &str,
    kind: &str,
    media_type: &str,
) -> String {
    format!(
        "{shipment}/{}/{attachment}-{kind}.{}",
        receipt.unwrap_or("shipment"),
        extension(media_type)
    )
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

fn write_zip(
    index_csv: Vec<u8>,
    files: Vec<(String, std::sync::Arc<Vec<u8>>)>,
) -> Result<Vec<u8>, AppError> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let failed =
        |e: &dyn std::fmt::Display| AppError::Internal(anyhow::anyhow!("writing ZIP: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Photos and PDFs are compressed already: stored as they are.
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("index.csv", deflated)
        .map_err(|e| failed(&e))?;
    zip.write_all(&index_csv).map_err(|e| failed(&e))?;
    for (name, bytes) in files {
        zip.start_file(name, stored).map_err(|e| failed(&e))?;
        zip.write_all(bytes.as_slice()).map_err(|e| failed(&e))?;
    }
    let cursor = zip.finish().map_err(|e| failed(&e))?;
    Ok(cursor.into_inner())
}
