//! The happy path and its usual accidents: offline phones, lost responses,
//! a server restart.

use aidsync_shared::model::Condition;
use aidsync_shared::sync::protocol::{self, SyncResponse, UploadResult};
use aidsync_tests::fingerprint::Fingerprint;
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::{Api, Fault, post_raw};

use crate::common::*;

pub async fn two_phones_offline_on_one_shipment(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    // Online once: both phones receive the facility's shipments.
    anna.sync_settled().await.unwrap();
    bohdan.sync_settled().await.unwrap();
    assert_eq!(anna.engine.shipment_ids().count(), 2);

    // Offline: both count the same delivery.
    anna.record(
        &id,
        receipt("line-1", 2, Condition::Good, &["US-1", "US-2"]),
    )
    .await
    .unwrap();
    anna.record(&id, receipt("line-2", 1, Condition::Damaged, &[]))
        .await
        .unwrap();
    bohdan
        .record(
            &id,
            receipt("line-1", 3, Condition::Good, &["US-3", "US-4", "US-9"]),
        )
        .await
        .unwrap();
    assert_eq!(anna.engine.pending(), 2);
    assert_eq!(bohdan.engine.pending(), 1);

    // Power is back.
    let a = anna.sync_settled().await.unwrap();
    let b = bohdan.sync_settled().await.unwrap();
    let a2 = anna.sync_settled().await.unwrap();
    assert_eq!((a.accepted, b.accepted, a2.accepted), (1, 1, 0));
    assert!(a.refused.is_empty() && b.refused.is_empty());
    assert_eq!(anna.engine.pending(), 0);
    assert_eq!(bohdan.engine.pending(), 0);

    // Every replica holds every record.
    let on_anna = anna.engine.shipment(&id).unwrap();
    let on_bohdan = bohdan.engine.shipment(&id).unwrap();
    assert_eq!(on_anna, on_bohdan);
    assert_eq!(on_anna.receipts.len(), 3);

    let detail = world.detail(SHIPMENT).await;
    assert_eq!(
        receipts_by_user(&detail),
        vec![
            ("anna".to_string(), 1),
            ("anna".to_string(), 2),
            ("bohdan".to_string(), 3)
        ]
    );
    for r in detail["receipts"].as_array().unwrap() {
        assert!(r["received_at"].as_i64().unwrap() > 0, "{r}");
    }
    let summary = &detail["summary"];
    assert_eq!(summary["received"], 6);
    assert_eq!(summary["damaged"], 1);
    assert_eq!(summary["status"], "discrepancy", "{summary}");
    let line1 = &summary["lines"][0];
    assert_eq!(line1["serials_unexpected"], serde_json::json!(["US-9"]));
    assert_eq!(line1["serials_missing"], serde_json::json!(["US-5"]));

    // The list shows the same totals as the detail.
    let (status, list) = world
        .api
        .get(Some(anna.token()), "/api/v1/shipments?status=discrepancy")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], SHIPMENT);
    assert_eq!(rows[0]["received"], 6);
    assert_eq!(rows[0]["receipts"], 3);
    world.server.stop().await.unwrap();
}

pub async fn retried_sync_is_a_no_op(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut phone = world.receiver("anna", FACILITY).await;
    phone.sync_settled().await.unwrap();
    phone
        .record(&id, receipt("line-1", 1, Condition::Good, &["US-1"]))
        .await
        .unwrap();

    // The same request bytes twice: the second time nothing is new.
    let request = protocol::encode(&phone.engine.sync_request());
    let url = format!("{}/api/v1/sync", world.server.base);
    let send = || {
        post_raw(
            &world.api.http,
            &url,
            Some(phone.token()),
            protocol::CONTENT_TYPE,
            &request,
            true,
        )
    };
    let first = send().await.unwrap();
    assert_eq!(first.status, 200);
    let first: SyncResponse = protocol::decode(&first.body).unwrap();
    assert_eq!(
        first.docs[0].upload,
        Some(UploadResult::Accepted { new: 1 }),
        "{first:?}"
    );
    let after_first = Fingerprint::take(db.url()).await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status, 200);
    let second: SyncResponse = protocol::decode(&second.body).unwrap();
    assert_eq!(
        second.docs[0].upload,
        Some(UploadResult::Accepted { new: 0 })
    );
    assert_eq!(Fingerprint::take(db.url()).await.unwrap(), after_first);

    // The phone never saw either answer: it syncs again and ends up clean,
    // with exactly one copy of its receipt on the server.
    phone
        .record(&id, receipt("line-2", 1, Condition::Good, &[]))
        .await
        .unwrap();
    let lost = phone.sync(Fault::LoseResponse).await;
    assert!(lost.is_err());
    assert_eq!(phone.engine.pending(), 2);
    phone.sync_settled().await.unwrap();
    assert_eq!(phone.engine.pending(), 0);
    let detail = world.detail(SHIPMENT).await;
    assert_eq!(
        receipts_by_user(&detail),
        vec![("anna".to_string(), 1), ("anna".to_string(), 1)]
    );
    let after = Fingerprint::take(db.url()).await.unwrap();
    assert_eq!(after.changes.len(), after_first.changes.len() + 1);
    world.server.stop().await.unwrap();
}

pub async fn restart_loses_nothing_acknowledged(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    anna.sync_settled().await.unwrap();
    bohdan.sync_settled().await.unwrap();
    anna.record(&id, receipt("line-1", 4, Condition::Good, &[]))
        .await
        .unwrap();
    let report = anna.sync_settled().await.unwrap();
    assert_eq!(report.accepted, 1);
    let before = Fingerprint::take(db.url()).await.unwrap();

    // Restart on the same database.
    world.server.stop().await.unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    assert_eq!(Fingerprint::take(db.url()).await.unwrap(), before);
    let api = Api::new(&server.base);
    // Tokens survive a restart; point the phones at the new port.
    let mut anna = anna.moved_to(&api);
    let mut bohdan = bohdan.moved_to(&api);

    bohdan.sync_settled().await.unwrap();
    let seen = bohdan.engine.shipment(&id).unwrap();
    assert_eq!(
        seen.receipts.len(),
        1,
        "acknowledged receipt lost in restart"
    );
    bohdan
        .record(&id, receipt("line-1", 1, Condition::MissingParts, &[]))
        .await
        .unwrap();
    bohdan.sync_settled().await.unwrap();
    anna.sync_settled().await.unwrap();
    assert_eq!(
        anna.engine.shipment(&id).unwrap(),
        bohdan.engine.shipment(&id).unwrap()
    );
    let (status, detail) = api
        .get(
            Some(&world.coordinator.token),
            &format!("/api/v1/shipments/{SHIPMENT}"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        receipts_by_user(&detail),
        vec![("anna".to_string(), 4), ("bohdan".to_string(), 1)]
    );
    server.stop().await.unwrap();
}

pub async fn lagging_phone_catches_up_and_new_shipments_arrive(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut early = world.receiver("anna", FACILITY).await;
    let mut late = world.receiver("bohdan", FACILITY).await;
    let mut elsewhere = world.receiver("vira", OTHER_FACILITY).await;
    early.sync_settled().await.unwrap();
    for n in 1..=5 {
        early
            .record(&id, receipt("line-2", 1, Condition::Good, &[]))
            .await
            .unwrap();
        if n % 2 == 0 {
            early.sync_settled().await.unwrap();
        }
    }
    early.sync_settled().await.unwrap();
    world.create_shipment("jica-test-003", FACILITY).await;
    world.create_shipment("jica-test-004", OTHER_FACILITY).await;

    // A phone that has never synced gets everything of its facility at once.
    late.sync_settled().await.unwrap();
    assert_eq!(late.engine.shipment_ids().count(), 3);
    assert_eq!(late.engine.shipment(&id).unwrap().receipts.len(), 5);
    early.sync_settled().await.unwrap();
    assert_eq!(early.engine.shipment_ids().count(), 3);
    assert_eq!(
        early.engine.document(&id).unwrap().clone().get_heads(),
        late.engine.document(&id).unwrap().clone().get_heads()
    );
    // And nothing of another facility.
    elsewhere.sync_settled().await.unwrap();
    let ids: Vec<String> = elsewhere
        .engine
        .shipment_ids()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(ids, vec!["jica-test-004".to_string()]);
    world.server.stop().await.unwrap();
}

pub async fn facilities_are_scoped_and_managed_by_admins(db: &TestDb) {
    let world = World::new(db).await;
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let admin = Some(world.admin.token.as_str());
    let coordinator = Some(world.coordinator.token.as_str());
    let receiver = world.receiver("anna", FACILITY).await;

    // An admin sees every facility, a coordinator those of the region.
    let (status, all) = world.api.get(admin, "/api/v1/facilities").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(ids(&all), vec![OTHER_FACILITY, FACILITY, FAR_FACILITY]);
    let (status, region) = world
        .api
        .get(coordinator, "/api/v1/facilities")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(ids(&region), vec![OTHER_FACILITY, FACILITY]);

    // A receiver sees its own facility only, and cannot add one.
    let (status, own) = world
        .api
        .get(Some(receiver.token()), "/api/v1/facilities")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(ids(&own), vec![FACILITY]);
    assert_eq!(own[0]["region"], REGION);
    let new =
        serde_json::json!({ "id": "balakliia-central", "name": "Balakliia", "region": "Kharkiv" });
    for token in [Some(receiver.token()), coordinator] {
        let (status, body) = world
            .api
            .post(token, "/api/v1/facilities", &new)
            .await
            .unwrap();
        assert_eq!(status, 403, "{body}");
    }

    // An admin can, once; bad values are refused.
    let (status, body) = world
        .api
        .post(admin, "/api/v1/facilities", &new)
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, _) = world
        .api
        .post(admin, "/api/v1/facilities", &new)
        .await
        .unwrap();
    assert_eq!(status, 409);
    let unnamed = serde_json::json!({ "id": "x-1", "name": " ", "region": "Kharkiv" });
    let (status, body) = world
        .api
        .post(admin, "/api/v1/facilities", &unnamed)
        .await
        .unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("name"));
    let (status, _) = world.api.get(None, "/api/v1/facilities").await.unwrap();
    assert_eq!(status, 401);
    world.server.stop().await.unwrap();
}

/// The phone web app is served beside the API; unknown API paths still
/// answer JSON, and the app's files carry the security headers.
pub async fn web_app_is_served_beside_the_api(db: &TestDb) {
    let world = World::new(db).await;
    let get = |path: &str| {
        let url = format!("{}{path}", world.server.base);
        let http = world.api.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let index = get("/").await;
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(index.headers().contains_key("content-security-policy"));
    assert!(index.text().await.unwrap().contains("app.js"));
    let script = get("/aidsync.js").await;
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let missing = get("/api/v1/nothing-here").await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = serde_json::from_str(&missing.text().await.unwrap()).unwrap();
    assert!(body["error"].is_string());
    assert_eq!(get("/no-such-file.js").await.status(), 404);
    world.server.stop().await.unwrap();
}
