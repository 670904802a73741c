//! Hand-carried sync end to end: a phone with no network writes its
//! waiting records to a file; a coordinator, even one of another region,
//! uploads it; the server stores it exactly as a sync from that phone
//! (its user's role and scope), once, and refuses whole a file changed on
//! the way, one signed with the wrong key, or one from a revoked phone.

use aidsync_shared::ids::{DeliveryId, ShipmentId};
use aidsync_shared::model::{Condition, NewDelivery, Seal};
use aidsync_shared::sync::carry::{CarriedFile, signing_key};
use aidsync_tests::harness::TestDb;
use aidsync_tests::phone::{Api, Phone};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use crate::common::*;

async fn import(api: &Api, token: &str, file: Vec<u8>) -> (StatusCode, Value) {
    let response = api
        .http
        .post(format!("{}/api/v1/sync/import", api.base))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(file)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn carried(phone: &mut Phone) -> Vec<u8> {
    let token = phone.token().to_owned();
    phone
        .engine
        .carried_file(&token, aidsync_tests::now_ms())
        .unwrap()
}

async fn receipts_of(world: &World, user: &str) -> usize {
    let detail = world.detail(SHIPMENT).await;
    detail["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["recorded_by"] == user)
        .count()
}

pub async fn a_hand_carried_file_syncs_once_as_its_phone(db: &TestDb) {
    let world = World::new(db).await;
    let api = &world.api;
    let id = ShipmentId::parse(SHIPMENT).unwrap();
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    // Weeks without a network: a truck, and two counts.
    anna.deliver(
        &id,
        NewDelivery {
            id: DeliveryId::parse("truck-7").unwrap(),
            waybill: "ТТН-0707".into(),
            transporter: String::new(),
            vehicle: String::new(),
            seal: Seal::None,
            seal_number: String::new(),
            packages_expected: None,
            packages_received: None,
            arrived_at: aidsync_tests::now_ms(),
            note: String::new(),
            replaces: None,
        },
    )
    .await
    .unwrap();
    anna.record(
        &id,
        receipt("line-1", 2, Condition::Good, &["US-1", "US-2"]),
    )
    .await
    .unwrap();
    anna.record(&id, receipt("line-2", 1, Condition::Damaged, &[]))
        .await
        .unwrap();
    let file = carried(&mut anna);

    // The courier is a coordinator of another region: the file is checked
    // as anna's sync, not as the courier's.
    world
        .add_user("marta", "coordinator", None, Some("Lviv"))
        .await;
    let marta = Phone::login(api, "marta", &password("marta"))
        .await
        .unwrap();
    let (status, report) = import(api, marta.token(), file.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["user"], "anna");
    assert_eq!(report["pending"], 3);
    assert_eq!(
        (
            report["accepted"].as_u64(),
            report["refused"].as_u64(),
            report["new_changes"].as_u64()
        ),
        (Some(1), Some(0), Some(3)),
        "{report}"
    );
    assert_eq!(receipts_of(&world, "anna").await, 2);
    let detail = world.detail(SHIPMENT).await;
    assert_eq!(detail["deliveries"][0]["waybill"], "ТТН-0707");

    // Again: nothing new.
    let (status, report) = import(api, &world.coordinator.token, file.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["new_changes"], 0, "{report}");
    assert_eq!(receipts_of(&world, "anna").await, 2);

    // Changed on the way: refused whole.
    let mut tampered = CarriedFile::read(&file).unwrap();
    let last = tampered.request.len() - 1;
    tampered.request[last] ^= 1;
    let mut bytes = Vec::new();
    ciborium::into_writer(&tampered, &mut bytes).unwrap();
    let (status, body) = import(api, marta.token(), bytes).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("changed after the phone wrote it"),
        "{body}"
    );
    // Written in anna's name by someone without her phone's token.
    let forged = CarriedFile::write(
        tampered.device.clone(),
        tampered.user.clone(),
        tampered.created_at,
        1,
        CarriedFile::read(&file).unwrap().request,
        &signing_key("a guessed token"),
    );
    let (status, _) = import(api, marta.token(), forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Anna's records, signed by ivan's phone: his scope does not hold the
    // shipment, and the changes are not his device's.
    let mut ivan = world.receiver("ivan", OTHER_FACILITY).await;
    ivan.sync_settled().await.unwrap();
    let ivan_identity = aidsync_tests::phone::identity(&ivan.session).unwrap();
    let borrowed = CarriedFile::write(
        ivan_identity.device,
        ivan_identity.user,
        tampered.created_at,
        3,
        CarriedFile::read(&file).unwrap().request,
        &signing_key(ivan.token()),
    );
    let (status, report) = import(api, marta.token(), borrowed).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["accepted"].as_u64(), report["refused"].as_u64()),
        (Some(0), Some(1)),
        "{report}"
    );
    // Not a file at all; a receiver as courier.
    let (status, _) = import(api, marta.token(), b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = import(api, ivan.token(), file.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        receipts_of(&world, "anna").await,
        2,
        "nothing refused was stored"
    );

    // When the phone reaches the network, its sync finds everything there.
    let report = anna.sync_settled().await.unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(anna.engine.pending(), 0);
    assert_eq!(receipts_of(&world, "anna").await, 2);

    // A revoked phone's file is not trusted.
    let anna_identity = aidsync_tests::phone::identity(&anna.session).unwrap();
    let (status, body) = world
        .api
        .post(
            Some(&world.admin.token),
            &format!("/api/v1/devices/{}/revoke", anna_identity.device),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = import(api, marta.token(), file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    world.server.stop().await.unwrap();
}
