//! Units after receipt end to end: receivers record steps offline on two
//! phones (one in conflict), the coordinator sees the counts per shipment
//! and facility, hands a unit over, and downloads the asset register, all
//! within the caller's scope.

use aidsync_shared::ids::{LineId, UnitEventId};
use aidsync_shared::model::{
    Condition, NewUnitEvent, StepKind, TestResult, UnitStatus, UnitStep, date_of,
};
use aidsync_tests::harness::TestDb;
use aidsync_tests::now_ms;
use calamine::{Reader, Xlsx};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn step(id: &str, serial: &str, step: UnitStep, note: &str) -> NewUnitEvent {
    NewUnitEvent {
        id: UnitEventId::parse(id).unwrap(),
        line_id: LineId::parse("line-1").unwrap(),
        serial: serial.into(),
        step,
        note: note.into(),
    }
}

/// The README's asset register columns, in order.
const REGISTER_COLUMNS: &str = "asset_number,handed_over_on,item,category,serial,donor,programme,shipment_id,shipment_reference,line_id,facility_id,facility,department,room,custodian,arrival_condition,installed_on,installer,commissioned_on,acceptance_result,acceptance_on,trained_people,trained_on,trainer,warranty_starts_on,warranty_ends_on,service_agent,status,status_note,accessories_checked,accessories_missing,estimated_value,currency,conflicts";

pub async fn units_go_from_receipt_to_the_asset_register(db: &TestDb) {
    let world = World::new(db).await;
    let api = &world.api;
    let id = shipment_id(SHIPMENT);
    let today = date_of(now_ms());
    let in_30_days = date_of(now_ms() + 30 * 86_400_000);
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    anna.sync_settled().await.unwrap();
    bohdan.sync_settled().await.unwrap();

    anna.record(
        &id,
        receipt("line-1", 2, Condition::Good, &["US-1", "US-2"]),
    )
    .await
    .unwrap();
    for (i, s) in [
        UnitStep::Installed {
            on: today.clone(),
            installer: "Medservice Kharkiv".into(),
        },
        UnitStep::Commissioned { on: today.clone() },
        UnitStep::AcceptanceTest {
            result: TestResult::Passed,
            on: today.clone(),
        },
        UnitStep::Warranty {
            starts_on: today.clone(),
            ends_on: in_30_days.clone(),
            service_agent: "Medservice Kharkiv".into(),
        },
        UnitStep::Location {
            department: "Приймальне відділення".into(),
            room: "12".into(),
            custodian: "Dr Shevchenko".into(),
        },
        UnitStep::Status {
            status: UnitStatus::Functioning,
        },
    ]
    .into_iter()
    .enumerate()
    {
        anna.unit_step(&id, step(&format!("anna-{i}"), "US-1", s, ""))
            .await
            .unwrap();
    }
    anna.unit_step(
        &id,
        step(
            "anna-fail",
            "US-2",
            UnitStep::AcceptanceTest {
                result: TestResult::Failed,
                on: today.clone(),
            },
            "probe shows no image",
        ),
    )
    .await
    .unwrap();
    anna.sync_settled().await.unwrap();
    // Bohdan, who has not synced since before anna's records, reports US-1
    // broken (a serial the line expects): the two status reports conflict.
    bohdan
        .unit_step(
            &id,
            step(
                "bohdan-1",
                "US-1",
                UnitStep::Status {
                    status: UnitStatus::AwaitingRepair,
                },
                "no power",
            ),
        )
        .await
        .unwrap();
    bohdan.sync_settled().await.unwrap();

    let coordinator = world.coordinator.token.clone();
    let (status, units) = api
        .get(
            Some(&coordinator),
            &format!("/api/v1/shipments/{SHIPMENT}/units"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{units}");
    let counts = &units["counts"];
    assert_eq!(counts["units"], 5, "{counts}");
    assert_eq!(counts["received"], 2);
    assert_eq!(counts["installed"], 1);
    assert_eq!(counts["accepted"], 1);
    assert_eq!(counts["in_conflict"], 1);
    assert_eq!(counts["warranty_ends_soon"], 1);
    let us1 = units["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["serial"] == "US-1")
        .unwrap();
    assert_eq!(
        us1["steps"]["status"]["current"].as_array().unwrap().len(),
        2,
        "both reports shown: {us1}"
    );

    // A receiver may not hand over; a coordinator may. Bad steps change
    // nothing.
    let handover = json!({
        "id": "handover-1",
        "line_id": "line-1",
        "serial": "US-1",
        "step": "handed_over",
        "on": today,
        "asset_number": "KRH-2026-0042",
        "note": ""
    });
    let path = format!("/api/v1/shipments/{SHIPMENT}/units");
    let (status, body) = api
        .post(Some(anna.token()), &path, &handover)
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let mut unknown = handover.clone();
    unknown["serial"] = json!("US-99");
    let (status, body) = api.post(Some(&coordinator), &path, &unknown).await.unwrap();
    assert_eq!(status, 422, "{body}");
    let mut no_step = handover.clone();
    no_step["step"] = json!("teleported");
    let (status, body) = api.post(Some(&coordinator), &path, &no_step).await.unwrap();
    assert!(status == 400 || status == 422, "{status} {body}");
    let (status, after) = api.get(Some(&coordinator), &path).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(after["counts"], units["counts"], "refusals changed nothing");
    let (status, body) = api
        .post(Some(&coordinator), &path, &handover)
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["counts"]["handed_over"], 1);

    // Per facility.
    let (status, summary) = api
        .get(
            Some(&coordinator),
            &format!("/api/v1/units?facility={FACILITY}"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{summary}");
    let facilities = summary["facilities"].as_array().unwrap();
    assert_eq!(facilities.len(), 1, "{summary}");
    assert_eq!(facilities[0]["counts"]["accepted"], 1);
    assert_eq!(facilities[0]["counts"]["handed_over"], 1);
    let ending: Vec<&Value> = summary["warranties_ending"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(ending.len(), 1, "{summary}");
    assert_eq!(ending[0]["serial"], "US-1");
    assert_eq!(ending[0]["ends_on"], json!(in_30_days));

    // The asset register: the accepted unit only, columns as documented.
    let (status, kind, csv) = download(
        api,
        &coordinator,
        &format!("/api/v1/asset-register.csv?facility={FACILITY}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let csv = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.join(","), REGISTER_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let cell = |name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        rows[0][i].to_owned()
    };
    assert_eq!(cell("serial"), "US-1");
    assert_eq!(cell("asset_number"), "KRH-2026-0042");
    assert_eq!(cell("handed_over_on"), today);
    assert_eq!(cell("department"), "Приймальне відділення");
    assert_eq!(cell("acceptance_result"), "passed");
    assert_eq!(cell("warranty_ends_on"), in_30_days);
    assert_eq!(
        cell("conflicts"),
        "status",
        "the status is still in conflict"
    );
    assert_eq!(cell("donor"), "JICA");
    let (status, kind, xlsx) = download(api, &coordinator, "/api/v1/asset-register.xlsx").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.contains("spreadsheetml"), "{kind}");
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    let sheet = book.worksheet_range("asset register").unwrap();
    let serials: Vec<String> = sheet.rows().skip(1).map(|r| r[4].to_string()).collect();
    assert_eq!(serials, ["US-1"]);

    // The phone learns of the hand-over on its next sync.
    anna.sync_settled().await.unwrap();
    let on_phone = anna.engine.shipment(&id).unwrap();
    let us1 = on_phone
        .units()
        .into_iter()
        .find(|u| u.serial == "US-1")
        .unwrap();
    assert!(us1.handed_over());
    assert!(us1.steps[&StepKind::Status].in_conflict());

    // Scope: another facility's receiver sees none of it.
    let mut ivan = world.receiver("ivan", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let (status, _) = api.get(Some(ivan.token()), &path).await.unwrap();
    assert_eq!(status, 404);
    let (status, _, csv) = download(api, ivan.token(), "/api/v1/asset-register.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        String::from_utf8(csv).unwrap().lines().count(),
        1,
        "only the header"
    );
    let (status, _, _) =
        download(api, &coordinator, "/api/v1/asset-register.csv?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    world.server.stop().await.unwrap();
}
