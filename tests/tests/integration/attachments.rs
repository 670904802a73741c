//! Attachments end to end: a phone records a photo's reference, syncs it,
//! then uploads the bytes in chunks through a network that loses requests
//! and responses, resuming from the server's offset each time; the server
//! verifies the hash, stores each content once, scopes every upload and
//! download to those who may see the shipment, and keeps the file across
//! a restart.

use aidsync_server::service::Limits;
use aidsync_shared::ids::{AttachmentId, ReceiptId};
use aidsync_shared::model::{Condition, FileKind, FileRef, NewAttachment};
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::{Api, Phone};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, ETAG, IF_NONE_MATCH, RANGE};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

const CHUNK: usize = 64 * 1024;

/// Bytes that look like a JPEG (its magic number) and are not all alike.
fn photo_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((4..len).map(|_| rng.random::<u8>()));
    bytes
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    aidsync_shared::ids::to_hex(&Sha256::digest(bytes))
}

fn photo(id: &str, receipt: Option<&ReceiptId>, sha256: &str, size: usize) -> NewAttachment {
    NewAttachment {
        id: AttachmentId::parse(id).unwrap(),
        file_kind: FileKind::Photo,
        receipt_id: receipt.cloned(),
        file: FileRef {
            sha256: sha256.to_owned(),
            media_type: "image/jpeg".into(),
            size: size as u64,
            width: Some(1600),
            height: Some(1200),
        },
        signer: None,
        note: "crate 2, crushed corner".into(),
        delivery_id: None,
    }
}

/// `GET /api/v1/uploads/{sha}`: (status, body).
async fn status(api: &Api, token: &str, sha: &str) -> (StatusCode, Value) {
    api.get(Some(token), &format!("/api/v1/uploads/{sha}"))
        .await
        .unwrap()
}

/// One `PATCH` of `bytes[offset..offset + len]`.
pub(crate) async fn patch(
    api: &Api,
    token: &str,
    sha: &str,
    bytes: &[u8],
    offset: usize,
    len: usize,
) -> (StatusCode, Value) {
    let end = (offset + len).min(bytes.len());
    let response = api
        .http
        .patch(format!("{}/api/v1/uploads/{sha}", api.base))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("Upload-Offset", offset.to_string())
        .header("Upload-Length", bytes.len().to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes[offset..end].to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

/// Uploads `bytes` as a phone on a bad network would: asks where the
/// server stands, sends chunks from there; a third of requests are lost
/// before they arrive and a third of responses after. Returns the bytes
/// sent in all (chunks that arrived or not).
async fn upload_through_loss(api: &Api, token: &str, sha: &str, bytes: &[u8], seed: u64) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sent = 0;
    for _ in 0..200 {
        let (code, body) = status(api, token, sha).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        if body["complete"] == true {
            return sent;
        }
        let mut offset = body["offset"].as_u64().unwrap() as usize;
        loop {
            let len = CHUNK.min(bytes.len() - offset);
            let fate: f64 = rng.random();
            if fate < 0.3 {
                // Lost on the way: the server never saw it.
                break;
            }
            sent += len;
            let (code, body) = patch(api, token, sha, bytes, offset, len).await;
            if fate < 0.6 {
                // The server took it; its answer was lost.
                break;
            }
            match code {
                StatusCode::OK => {}
                StatusCode::CONFLICT => break,
                other => panic!("upload refused: {other} {body}"),
            }
            if body["complete"] == true {
                return sent;
            }
            offset = body["offset"].as_u64().unwrap() as usize;
        }
    }
    panic!("the upload did not complete in 200 attempts");
}

async fn download(api: &Api, token: &str, sha: &str) -> reqwest::Response {
    api.http
        .get(format!("{}/api/v1/blobs/{sha}", api.base))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

/// A receipt recorded on `phone` and synced, with a photo attached to it.
async fn receipt_with_photo(phone: &mut Phone, attachment: &str, bytes: &[u8]) -> ReceiptId {
    let id = shipment_id(SHIPMENT);
    let receipt = phone
        .record(&id, receipt("line-1", 1, Condition::Damaged, &[]))
        .await
        .unwrap();
    phone
        .attach(
            &id,
            photo(attachment, Some(&receipt.id), &sha256(bytes), bytes.len()),
        )
        .await
        .unwrap();
    let report = phone.sync_settled().await.unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");
    receipt.id
}

pub async fn photos_upload_resumably_once_and_only_in_scope(db: &TestDb) {
    let world = World::new(db).await;
    let api = &world.api;
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    let bytes = photo_bytes(1, 300_000);
    let sha = sha256(&bytes);

    // Before the record reaches the server, nobody may upload the bytes.
    let (code, _) = status(api, anna.token(), &sha).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let receipt_id = receipt_with_photo(&mut anna, "a-1", &bytes).await;
    let (code, body) = status(api, anna.token(), &sha).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        (body["offset"].as_u64(), body["complete"].as_bool()),
        (Some(0), Some(false))
    );

    // A receiver of another facility, or an unknown hash: 404, as if absent.
    let mut ivan = world.receiver("ivan", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let (code, _) = status(api, ivan.token(), &sha).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = patch(api, ivan.token(), &sha, &bytes, 0, CHUNK).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = status(api, anna.token(), &"0".repeat(64)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = status(api, anna.token(), "not-a-hash").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // A chunk that does not start where the server stands: 409, nothing kept.
    let (code, body) = patch(api, anna.token(), &sha, &bytes, CHUNK, CHUNK).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("resume from offset 0"),
        "{body}"
    );

    // A retry racing its own first attempt: one stores the chunk, the
    // other is told to ask (409), never a server error.
    let (a, b) = tokio::join!(
        patch(api, anna.token(), &sha, &bytes, 0, CHUNK),
        patch(api, anna.token(), &sha, &bytes, 0, CHUNK)
    );
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [StatusCode::OK, StatusCode::CONFLICT], "{a:?} {b:?}");

    // Through a network that loses a third of requests and of responses.
    let sent = upload_through_loss(api, anna.token(), &sha, &bytes, 7).await;
    // The first chunk was on the server already: the rest, at least.
    assert!(sent >= bytes.len() - CHUNK, "{sent} bytes sent");
    let response = download(api, anna.token(), &sha).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // The coordinator of the region sees the photo beside the receipt and
    // downloads it; the other facility's receiver still cannot.
    let detail = world.detail(SHIPMENT).await;
    let attachments = detail["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{detail}");
    assert_eq!(attachments[0]["sha256"], sha.as_str());
    assert_eq!(attachments[0]["receipt_id"], receipt_id.as_str());
    assert_eq!(attachments[0]["removed"], false);
    let response = download(api, &world.coordinator.token, &sha).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        download(api, ivan.token(), &sha).await.status(),
        StatusCode::NOT_FOUND
    );

    // Ranges and revalidation.
    let ranged = |range: &'static str| {
        api.http
            .get(format!("{}/api/v1/blobs/{sha}", api.base))
            .header(AUTHORIZATION, format!("Bearer {}", anna.token()))
            .header(RANGE, range)
            .send()
    };
    let part = ranged("bytes=100-199").await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()[CONTENT_RANGE], "bytes 100-199/300000");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..200]);
    let tail = ranged("bytes=-10").await.unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 10..]
    );
    let beyond = ranged("bytes=300000-").await.unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()[CONTENT_RANGE], "bytes */300000");
    let cached = api
        .http
        .get(format!("{}/api/v1/blobs/{sha}", api.base))
        .header(AUTHORIZATION, format!("Bearer {}", anna.token()))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    // The same photo attached again, by a colleague: already on the
    // server, nothing to upload, and an upload attempt changes nothing.
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    bohdan.sync_settled().await.unwrap();
    receipt_with_photo(&mut bohdan, "b-1", &bytes).await;
    let (code, body) = status(api, bohdan.token(), &sha).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["complete"], true);
    assert_eq!(body["offset"].as_u64(), Some(bytes.len() as u64));
    let (code, body) = patch(api, bohdan.token(), &sha, &bytes, 0, CHUNK).await;
    assert_eq!(
        (code, body["complete"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    // Knowing a hash is not enough: a receiver elsewhere who attaches the
    // same content to a record of their own gets nothing until they upload
    // the bytes themselves (verified, not stored again).
    world.create_shipment("other-001", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let other = shipment_id("other-001");
    let theirs = ivan
        .record(&other, receipt("line-1", 1, Condition::Good, &[]))
        .await
        .unwrap();
    ivan.attach(&other, photo("i-1", Some(&theirs.id), &sha, bytes.len()))
        .await
        .unwrap();
    ivan.sync_settled().await.unwrap();
    assert_eq!(
        download(api, ivan.token(), &sha).await.status(),
        StatusCode::NOT_FOUND
    );
    let (code, body) = status(api, ivan.token(), &sha).await;
    assert_eq!(
        (code, body["complete"].as_bool(), body["offset"].as_u64()),
        (StatusCode::OK, Some(false), Some(0))
    );
    // Nor can they block Anna's colleagues: their upload is their own, and
    // it must have the length the record declares.
    let (code, _) = patch(api, ivan.token(), &sha, &bytes[..1000], 0, 1000).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "a length no record declares");
    let (code, body) = patch(api, ivan.token(), &sha, &bytes, 0, bytes.len()).await;
    assert_eq!(
        (code, body["complete"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    let response = download(api, ivan.token(), &sha).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // A coordinator may download but not upload.
    let (code, _) = patch(api, &world.coordinator.token, &sha, &bytes, 0, CHUNK).await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    // Acknowledged means stored: the file is there after a restart.
    world.server.stop().await.unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    let api = Api::new(&server.base);
    let response = download(&api, anna.token(), &sha).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    server.stop().await.unwrap();
}

pub async fn wrong_bytes_and_limits_are_refused(db: &TestDb) {
    let limits = Limits {
        max_attachment_bytes: 200_000,
        attachment_bytes_per_user_per_day: 300_000,
        ..Limits::default()
    };
    let world = World::with_limits(db, limits).await;
    let api = &world.api;
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();

    // Bytes that do not hash to what the record says: refused once all
    // have arrived, and the upload starts again from zero.
    let claimed = photo_bytes(2, 100_000);
    let sha = sha256(&claimed);
    receipt_with_photo(&mut anna, "a-1", &claimed).await;
    let mut other = claimed.clone();
    other[50_000] ^= 1;
    let (code, _) = patch(api, anna.token(), &sha, &other, 0, CHUNK).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = patch(api, anna.token(), &sha, &other, CHUNK, CHUNK).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("upload it again"),
        "{body}"
    );
    let (_, body) = status(api, anna.token(), &sha).await;
    assert_eq!(
        (body["offset"].as_u64(), body["complete"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(
        download(api, anna.token(), &sha).await.status(),
        StatusCode::NOT_FOUND
    );

    // Right hash, wrong kind of file: a page is not a JPEG.
    let page = b"<html><script>alert(1)</script></html>".repeat(100);
    let page_sha = sha256(&page);
    let id = shipment_id(SHIPMENT);
    anna.attach(&id, photo("a-2", None, &page_sha, page.len()))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();
    let (code, body) = patch(api, anna.token(), &page_sha, &page, 0, page.len()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a image/jpeg file"),
        "{body}"
    );

    // Over the size limit: 413 before a byte is kept.
    let big = photo_bytes(3, 250_000);
    let big_sha = sha256(&big);
    anna.attach(&id, photo("a-3", None, &big_sha, big.len()))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();
    let (code, _) = patch(api, anna.token(), &big_sha, &big, 0, CHUNK).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);

    // Over the daily allowance (300,000 bytes; 100,000 + 3,800 used above).
    let mut refused_at = None;
    for n in 0..4u64 {
        let bytes = photo_bytes(10 + n, 90_000);
        let sha = sha256(&bytes);
        anna.attach(&id, photo(&format!("q-{n}"), None, &sha, bytes.len()))
            .await
            .unwrap();
        anna.sync_settled().await.unwrap();
        let (code, body) = patch(api, anna.token(), &sha, &bytes, 0, bytes.len()).await;
        if code == StatusCode::TOO_MANY_REQUESTS {
            refused_at = Some(n);
            let (_, body) = status(api, anna.token(), &sha).await;
            assert_eq!(body["offset"].as_u64(), Some(0), "nothing of it kept");
            break;
        }
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    assert_eq!(
        refused_at,
        Some(2),
        "the third 90 kB photo passes the allowance"
    );

    // Someone else's allowance is their own.
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    bohdan.sync_settled().await.unwrap();
    let (code, _) = patch(api, bohdan.token(), &sha, &claimed, 0, claimed.len()).await;
    assert_eq!(code, StatusCode::OK);
}

/// A shipment stored before attachments existed (schema 1) is upgraded
/// once, by the server at start, as a change of its own that phones then
/// receive; after that a phone attaches to it like to any other.
pub async fn schema_1_shipments_are_upgraded_at_start(db: &TestDb) {
    use aidsync_server::storage::ChangeAuthor;
    use aidsync_shared::model::ShipmentDoc;
    use automerge::ROOT;
    use automerge::transaction::Transactable;

    let world = World::new(db).await;
    // Turn the stored shipment back into a schema 1 document, as an older
    // server would have written it, and mark the rows as of older rules.
    let server_db = world.server.db();
    let mut tx = server_db.begin_write().await.unwrap();
    let mut co = tx
        .checkout(server_db.documents(), SHIPMENT, true)
        .await
        .unwrap()
        .unwrap();
    let mut doc = ShipmentDoc::from_automerge(std::mem::take(&mut co.loaded.stored.doc));
    let before = doc.heads();
    doc.automerge_mut().delete(ROOT, "attachments").unwrap();
    doc.automerge_mut().delete(ROOT, "deliveries").unwrap();
    doc.automerge_mut().delete(ROOT, "unit_events").unwrap();
    doc.automerge_mut()
        .put(ROOT, "schema", automerge::ScalarValue::Uint(1))
        .unwrap();
    doc.automerge_mut().commit();
    let old = doc.read().unwrap();
    assert_eq!(old.schema, 1);
    let changes = doc.automerge_mut().get_changes(&before);
    co.loaded.stored.doc = doc.into_automerge();
    co.loaded.projection = None;
    let version = tx.next_version().await.unwrap();
    let author = ChangeAuthor {
        device_id: None,
        user_id: "older-server",
        signers: None,
    };
    aidsync_server::service::store::store_changes(
        &mut tx,
        &mut co,
        old,
        &changes,
        version,
        &author,
        aidsync_tests::now_ms(),
    )
    .await
    .unwrap();
    tx.set_projection_version(2).await.unwrap();
    tx.commit().await.unwrap();
    co.discard();

    // A phone that syncs now holds the schema 1 document and cannot attach.
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    let id = shipment_id(SHIPMENT);
    assert_eq!(anna.engine.shipment(&id).unwrap().schema, 1);
    let bytes = photo_bytes(5, 1_000);
    let err = anna
        .attach(&id, photo("a-1", None, &sha256(&bytes), bytes.len()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("predates attachments"), "{err}");

    // The next start upgrades it; the phone receives the upgrade.
    world.server.stop().await.unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    let api = Api::new(&server.base);
    let mut anna = anna.moved_to(&api);
    anna.sync_settled().await.unwrap();
    assert_eq!(
        anna.engine.shipment(&id).unwrap().schema,
        aidsync_shared::model::SCHEMA_VERSION
    );
    anna.attach(&id, photo("a-1", None, &sha256(&bytes), bytes.len()))
        .await
        .unwrap();
    let report = anna.sync_settled().await.unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");
    let (code, _) = patch(&api, anna.token(), &sha256(&bytes), &bytes, 0, bytes.len()).await;
    assert_eq!(code, StatusCode::OK);
    // Starting again finds nothing left to upgrade or rebuild.
    server.stop().await.unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    assert_eq!(
        server.db().projection_version().await.unwrap(),
        aidsync_server::storage::PROJECTION_VERSION
    );
    server.stop().await.unwrap();
}

/// A real PNG of `width` × `height`.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Thumbnails for the dashboard, and the ZIP a coordinator sends a donor:
/// every file named after its receipt, with an index matching files to
/// receipts, lines and items.
pub async fn thumbnails_and_the_donor_export(db: &TestDb) {
    let world = World::new(db).await;
    let api = &world.api;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    let picture = png(800, 600);
    let receipt_id = {
        let receipt = anna
            .record(&id, receipt("line-1", 1, Condition::Damaged, &[]))
            .await
            .unwrap();
        let mut new = photo(
            "a-photo",
            Some(&receipt.id),
            &sha256(&picture),
            picture.len(),
        );
        new.file.media_type = "image/png".into();
        new.file.width = Some(800);
        new.file.height = Some(600);
        anna.attach(&id, new).await.unwrap();
        receipt.id
    };
    let waybill = b"%PDF-1.4\n% waybill KH-2291\n".repeat(20);
    let mut scan = photo("a-waybill", None, &sha256(&waybill), waybill.len());
    scan.file_kind = FileKind::Document;
    scan.file.media_type = "application/pdf".into();
    scan.file.width = None;
    scan.file.height = None;
    anna.attach(&id, scan).await.unwrap();
    let later = photo_bytes(9, 5_000);
    anna.attach(&id, photo("a-later", None, &sha256(&later), later.len()))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();
    for bytes in [&picture, &waybill] {
        let (code, body) = patch(api, anna.token(), &sha256(bytes), bytes, 0, bytes.len()).await;
        assert_eq!(
            (code, body["complete"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{body}"
        );
    }

    let thumbnail = |sha: String, token: String| async move {
        api.http
            .get(format!("{}/api/v1/blobs/{sha}/thumbnail", api.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    };
    let response = thumbnail(sha256(&picture), world.coordinator.token.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let small = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240));
    let response = thumbnail(sha256(&waybill), world.coordinator.token.clone()).await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "a PDF has no thumbnail"
    );
    let mut ivan = world.receiver("ivan", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let response = thumbnail(sha256(&picture), ivan.token().to_owned()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let export = |token: String| async move {
        api.http
            .get(format!(
                "{}/api/v1/shipments/{SHIPMENT}/attachments.zip",
                api.base
            ))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        export(ivan.token().to_owned()).await.status(),
        StatusCode::NOT_FOUND
    );
    let response = export(world.coordinator.token.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let photo_name = format!("{SHIPMENT}/{receipt_id}/a-photo-photo.png");
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "index.csv".to_owned(),
            photo_name.clone(),
            format!("{SHIPMENT}/shipment/a-waybill-document.pdf")
        ]
    );
    let read = |zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut out).unwrap();
        out
    };
    assert_eq!(read(&mut zip, &photo_name), picture);
    let index = String::from_utf8(read(&mut zip, "index.csv")).unwrap();
    let rows: Vec<&str> = index.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(rows.len(), 4, "{index}");
    assert!(
        rows[0]
            .starts_with("file,shipment_id,reference,attachment_id,kind,receipt_id,line_id,item"),
        "{index}"
    );
    let later_row = rows.iter().find(|r| r.contains("a-later")).unwrap();
    assert!(
        later_row.starts_with(','),
        "not on the server, so no file: {later_row}"
    );
    assert!(later_row.ends_with(",no,no"), "{later_row}");
    let photo_row = rows.iter().find(|r| r.contains("a-photo")).unwrap();
    assert!(photo_row.contains(",damaged,"), "{photo_row}");
    assert!(photo_row.ends_with(",no,yes"), "{photo_row}");

    // The same for every shipment a report filter selects: this facility's
    // files in one archive; another facility's filter has none of them.
    let filtered = |query: &'static str| {
        api.http
            .get(format!("{}/api/v1/attachments.zip?{query}", api.base))
            .header(AUTHORIZATION, format!("Bearer {}", world.coordinator.token))
            .send()
    };
    let response = filtered("facility=kharkiv-regional").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(
        response.bytes().await.unwrap().to_vec(),
    ))
    .unwrap();
    assert_eq!(read(&mut zip, &photo_name), picture);
    let response = filtered("facility=izium-central").await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(
        response.bytes().await.unwrap().to_vec(),
    ))
    .unwrap();
    assert_eq!(zip.len(), 1, "only the index");
    let index = String::from_utf8(read(&mut zip, "index.csv")).unwrap();
    assert_eq!(
        index.trim_start_matches('\u{feff}').lines().count(),
        1,
        "{index}"
    );
    let response = filtered("colour=red").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// A server process, killed (SIGKILL) and reaped when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `aidsync serve` as its own process on `database_url`, and its address.
fn spawn_server(database_url: &str, web_root: &std::path::Path) -> Option<(Process, String)> {
    use std::io::BufRead;
    let binary = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("debug/aidsync");
    if !binary.exists() {
        eprintln!(
            "SKIPPED the kill test: {} is not built (cargo test --workspace builds it)",
            binary.display()
        );
        return None;
    }
    let mut child = Process(
        std::process::Command::new(binary)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(["--web-root", web_root.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the server exited before serving"
        );
        if let Some(addr) = line.trim().strip_prefix("aidsync: serving ") {
            return Some((child, addr.to_owned()));
        }
    }
}

/// The last chunk acknowledged means the file is stored: a server killed
/// (SIGKILL, no shutdown) right after answering still has it.
pub async fn a_file_survives_a_kill_after_its_last_chunk(db: &TestDb) {
    let world = World::new(db).await;
    let mut anna = world.receiver("anna", FACILITY).await;
    world.server.stop().await.unwrap();
    let web_root = tempfile::tempdir().unwrap();
    let Some((child, base)) = spawn_server(db.url(), web_root.path()) else {
        return;
    };
    let api = Api::new(&base);
    anna = anna.moved_to(&api);
    anna.sync_settled().await.unwrap();
    let bytes = photo_bytes(21, 150_000);
    let sha = sha256(&bytes);
    receipt_with_photo(&mut anna, "a-kill", &bytes).await;
    let (code, _) = patch(&api, anna.token(), &sha, &bytes, 0, CHUNK).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = patch(&api, anna.token(), &sha, &bytes, CHUNK, bytes.len() - CHUNK).await;
    assert_eq!(
        (code, body["complete"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    drop(child); // SIGKILL: no shutdown, no flush beyond what was committed

    let server = TestServer::start(db.url()).await.unwrap();
    let api = Api::new(&server.base);
    let response = download(&api, anna.token(), &sha).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    server.stop().await.unwrap();
}
