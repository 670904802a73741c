//! The donor's discrepancy report end to end: what receivers recorded
//! (reasons, notes, photos) and coordinators reviewed reaches one PDF and
//! one XLSX, per shipment or per filter, within the caller's scope.

use aidsync_shared::ids::{AttachmentId, ReviewId};
use aidsync_shared::model::{Condition, FileKind, FileRef, NewAttachment, Reason, Stage};
use aidsync_tests::harness::TestDb;
use calamine::{Reader, Xlsx};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;
use crate::grn::pdf_text;

/// The XLSX's rows as text, header first.
fn sheet(bytes: Vec<u8>) -> Vec<Vec<String>> {
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range("discrepancies").unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

pub async fn the_donor_report_lists_every_discrepancy_with_its_evidence(db: &TestDb) {
    let world = World::new(db).await;
    let api = &world.api;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();

    let mut cracked = receipt("line-1", 1, Condition::Damaged, &["US-1"]);
    cracked.stage = Some(Stage::Rejected);
    cracked.reason = Some(Reason::DamagedInTransit);
    cracked.note = "screen cracked, crate crushed".into();
    let cracked = anna.record(&id, cracked).await.unwrap();
    anna.record(
        &id,
        receipt("line-1", 2, Condition::Good, &["US-2", "US-3"]),
    )
    .await
    .unwrap();
    anna.attach(
        &id,
        NewAttachment {
            id: AttachmentId::parse("photo-crate").unwrap(),
            file_kind: FileKind::Photo,
            receipt_id: Some(cracked.id.clone()),
            file: FileRef {
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                media_type: "image/jpeg".into(),
                size: 120_000,
                width: Some(1600),
                height: Some(1200),
            },
            signer: None,
            note: "crushed corner".into(),
            delivery_id: None,
        },
    )
    .await
    .unwrap();
    anna.sync_settled().await.unwrap();
    // The coordinator settles the damage with the donor's supplier.
    let review = json!({
        "id": ReviewId::parse("rv-1").unwrap(),
        "note": "supplier replaces the unit",
        "verdict": "approved",
        "resolves": [cracked.id],
    });
    let (status, body) = api
        .post(
            Some(&world.coordinator.token),
            &format!("/api/v1/shipments/{SHIPMENT}/reviews"),
            &review,
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");

    let token = world.coordinator.token.clone();
    let (status, kind, pdf) = download(
        api,
        &token,
        &format!("/api/v1/shipments/{SHIPMENT}/donor-report.pdf"),
    )
    .await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/pdf"));
    if let Some(text) = pdf_text(&pdf) {
        // Words: table cells wrap within their columns, line by line
        // beside each other (the XLSX below holds the exact texts).
        for expected in [
            "Donor discrepancy report",
            "REF-jica-test-001",
            "ultrasound",
            "settled",
            "missing",
            "перевезення",
            "cracked",
            "supplier",
            "replaces",
            "approved",
            "crushed",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    let (status, kind, xlsx) = download(
        api,
        &token,
        &format!("/api/v1/donor-report.xlsx?facility={FACILITY}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.contains("spreadsheetml"), "{kind}");
    let rows = sheet(xlsx);
    let column = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let (kind, status, reasons, files, reviews, shipment) = (
        column("kind"),
        column("status"),
        column("reasons"),
        column("files"),
        column("reviews"),
        column("shipment_id"),
    );
    let damaged = rows
        .iter()
        .find(|r| r[kind] == "damaged" && r[shipment] == SHIPMENT)
        .unwrap_or_else(|| panic!("no damage row in {rows:?}"));
    assert_eq!(damaged[status], "settled");
    assert_eq!(damaged[reasons], "damaged_in_transit");
    assert!(
        damaged[reviews].contains("approved: supplier replaces the unit"),
        "{damaged:?}"
    );
    assert_eq!(
        damaged[files],
        format!("{SHIPMENT}/{}/photo-crate-photo.jpg", cracked.id)
    );
    let missing = rows
        .iter()
        .filter(|r| r[kind] == "missing" && r[status] == "open")
        .map(|r| r[shipment].clone())
        .collect::<Vec<_>>();
    // Both lines of the first shipment; none of the second, which has not
    // started to arrive.
    assert_eq!(missing, [SHIPMENT, SHIPMENT], "{rows:?}");

    // Scope: a receiver elsewhere gets no row of this facility; a bad
    // filter is a 400; an unknown shipment a 404; no token a 401.
    let mut ivan = world.receiver("ivan", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let (status, _, xlsx) = download(api, ivan.token(), "/api/v1/donor-report.xlsx").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sheet(xlsx).len(), 1, "only the header");
    let (status, _, _) = download(
        api,
        ivan.token(),
        &format!("/api/v1/shipments/{SHIPMENT}/donor-report.pdf"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = download(api, &token, "/api/v1/donor-report.pdf?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = api
        .http
        .get(format!("{}/api/v1/donor-report.pdf", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    world.server.stop().await.unwrap();
}
