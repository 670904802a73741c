//! The goods-received note end to end: a receiver records a delivery, a
//! short count, a rejected damaged unit and both signatures offline, syncs
//! and uploads; the coordinator downloads the note as PDF, and its text
//! (extracted with poppler's `pdftotext`) holds the Ukrainian labels, the
//! delivery's papers, the serials, the reasons and the signers. Scoped like
//! the shipment.

use std::process::Command;

use aidsync_shared::ids::{AttachmentId, DeliveryId};
use aidsync_shared::model::{
    Condition, FileKind, FileRef, NewAttachment, NewDelivery, Reason, Seal, Signer, Stage,
};
use aidsync_tests::harness::TestDb;
use reqwest::StatusCode;

use crate::attachments::{patch, png, sha256};
use crate::common::*;

/// The text of a PDF, by `pdftotext`; `None` (and why, printed) where
/// poppler-utils is not installed. `.ci/run` installs it.
pub(crate) fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("note.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = match Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "SKIPPED the PDF text checks: pdftotext is not installed ({e}); apt-get install poppler-utils"
            );
            return None;
        }
    };
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// How many images `pdfimages -list` finds in a PDF (`None` without poppler).
fn pdf_images(pdf: &[u8]) -> Option<usize> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("note.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdfimages")
        .arg("-list")
        .arg(&path)
        .output()
        .ok()?;
    assert!(out.status.success());
    // Two heading lines, then one line per image.
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .count()
            .saturating_sub(2),
    )
}

fn signature(id: &str, bytes: &[u8], name: &str, role: &str) -> NewAttachment {
    NewAttachment {
        id: AttachmentId::parse(id).unwrap(),
        file_kind: FileKind::Signature,
        receipt_id: None,
        file: FileRef {
            sha256: sha256(bytes),
            media_type: "image/png".into(),
            size: bytes.len() as u64,
            width: Some(300),
            height: Some(100),
        },
        signer: Some(Signer {
            name: name.into(),
            role: role.into(),
        }),
        note: String::new(),
        delivery_id: None,
    }
}

pub async fn the_goods_received_note_is_a_pdf_with_everything_signed(db: &TestDb) {
    let world = World::new(db).await;
    let api = &world.api;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();

    let delivery = DeliveryId::parse("truck-1").unwrap();
    anna.deliver(
        &id,
        NewDelivery {
            id: delivery.clone(),
            waybill: "ТТН-0042".into(),
            transporter: "Нова Пошта Карго".into(),
            vehicle: "AX 1234 KC".into(),
            seal: Seal::Broken,
            seal_number: "S-77001".into(),
            packages_expected: Some(7),
            packages_received: Some(6),
            arrived_at: aidsync_tests::now_ms() - 3_600_000,
            note: "одне місце прибуло відкритим".into(),
            replaces: None,
        },
    )
    .await
    .unwrap();
    let mut short = receipt("line-1", 3, Condition::Good, &["US-1", "US-2", "US-3"]);
    short.stage = Some(Stage::Accepted);
    short.reason = Some(Reason::Short);
    short.delivery_id = Some(delivery.clone());
    anna.record(&id, short).await.unwrap();
    let mut broken = receipt("line-1", 1, Condition::Damaged, &["US-4"]);
    broken.stage = Some(Stage::Rejected);
    broken.reason = Some(Reason::DamagedInTransit);
    broken.note = "розбитий екран".into();
    broken.delivery_id = Some(delivery.clone());
    anna.record(&id, broken).await.unwrap();
    // Refused by the model on the phone: rejected without a reason.
    let mut no_reason = receipt("line-2", 2, Condition::Good, &[]);
    no_reason.stage = Some(Stage::Rejected);
    assert!(anna.record(&id, no_reason).await.is_err());

    let officer = png(300, 100);
    let driver = png(301, 100);
    anna.attach(
        &id,
        signature("sig-officer", &officer, "Ганна Коваль", "receiving officer"),
    )
    .await
    .unwrap();
    anna.attach(
        &id,
        signature("sig-driver", &driver, "Іван Петренко", "водій"),
    )
    .await
    .unwrap();
    anna.sync_settled().await.unwrap();
    // The officer's signature reaches the server; the driver's not yet.
    let (code, body) = patch(
        api,
        anna.token(),
        &sha256(&officer),
        &officer,
        0,
        officer.len(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let detail = world.detail(SHIPMENT).await;
    assert_eq!(detail["deliveries"][0]["waybill"], "ТТН-0042");
    let stages: Vec<&str> = detail["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["stage"].as_str())
        .collect();
    assert_eq!(stages.len(), 2, "{detail}");

    let token = world.coordinator.token.clone();
    let path = format!("/api/v1/shipments/{SHIPMENT}/grn.pdf?delivery=truck-1");
    let (status, kind, pdf) = download(api, &token, &path).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    if let Some(text) = pdf_text(&pdf) {
        // Spaces aside: a table cell wraps within its column, and
        // pdftotext spaces words as it measures them.
        let squashed: String = text.split_whitespace().collect();
        for expected in [
            "Акт приймання товару",
            "Goods received note",
            "ТТН-0042",
            "Нова Пошта Карго",
            "AX 1234 KC",
            "порушена / broken S-77001",
            "6 / 7",
            "US-1",
            "US-4",
            "недостача",
            "перевезення",
            "розбитий екран",
            "Ганна Коваль",
            "Іван Петренко",
            "file not on the server yet",
        ] {
            let expected: String = expected.split_whitespace().collect();
            assert!(
                squashed.contains(&expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }
    // The officer's signature is drawn; the driver's is only named.
    if let Some(images) = pdf_images(&pdf) {
        assert_eq!(images, 1, "one signature image in the note");
    }

    // The whole shipment's note, the receiver's own copy, and the refusals.
    let (status, _, whole) = download(
        api,
        &token,
        &format!("/api/v1/shipments/{SHIPMENT}/grn.pdf"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    if let Some(text) = pdf_text(&whole) {
        assert!(text.contains("Ambulance vehicle"), "{text}");
    }
    let (status, _, _) = download(api, anna.token(), &path).await;
    assert_eq!(status, StatusCode::OK, "a receiver downloads the note too");
    let mut ivan = world.receiver("ivan", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let (status, _, _) = download(api, ivan.token(), &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another facility's note");
    let (status, _, _) = download(
        api,
        &token,
        &format!("/api/v1/shipments/{SHIPMENT}/grn.pdf?delivery=no-such-truck"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = download(
        api,
        &token,
        &format!("/api/v1/shipments/{SHIPMENT}/grn.pdf?delivery=bad%20id"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = api
        .http
        .get(format!("{}{path}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    world.server.stop().await.unwrap();
}
