//! Several server processes on one database: each keeps its own document
//! cache, rate limits and event hub, and shares only the database. Phones
//! sync through either, a coordinator edits through either, and nothing is
//! lost, counted twice or served stale; on PostgreSQL a dashboard connected
//! to one server hears of syncs made through the other.

use serde_json::{Value, json};

use aidsync_server::service::Limits;
use aidsync_shared::model::Condition;
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::{Api, Phone};

use crate::common::{
    COORDINATOR, EventStream, FACILITY, SECOND_SHIPMENT, SHIPMENT, World, password, receipt,
    shipment_id,
};

/// A shipment's receipts as one server's coordinator API reports them:
/// (id, quantity, voided), sorted.
async fn receipts_via(api: &Api, token: &str, shipment: &str) -> Vec<(String, u64, bool)> {
    let (status, body) = api
        .get(Some(token), &format!("/api/v1/shipments/{shipment}"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(String, u64, bool)> = body["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["quantity"].as_u64().unwrap(),
                r["voided"].as_bool().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

pub async fn phones_and_dashboards_span_two_servers(db: &TestDb) {
    let postgres = db.url().starts_with("postgres");
    let world = World::new(db).await;
    let second = TestServer::start(db.url()).await.unwrap();
    let (a, b) = (world.api.clone(), Api::new(&second.base));
    let coordinator_b = b.login(COORDINATOR, &password(COORDINATOR)).await.unwrap();
    let mut stream_b = EventStream::open_at(&b, &coordinator_b.token).await;
    assert_eq!(stream_b.0, 200);

    let mut phones = vec![
        world.receiver("anna", FACILITY).await,
        world.receiver("bohdan", FACILITY).await,
    ];
    for phone in &mut phones {
        phone.sync_settled().await.unwrap();
    }
    let mut recorded = 0;
    for round in 0..6 {
        for (i, slot) in phones.iter_mut().enumerate() {
            let shipment = if (round + i) % 2 == 0 {
                SHIPMENT
            } else {
                SECOND_SHIPMENT
            };
            // Each phone's syncs alternate between the two servers, and the
            // two phones are always on different ones.
            let phone: &mut Phone = slot;
            phone.point_at(if (round + i) % 2 == 0 { &a } else { &b });
            phone
                .record(
                    &shipment_id(shipment),
                    receipt("line-2", 1, Condition::Good, &[]),
                )
                .await
                .unwrap();
            recorded += 1;
            let report = phone.sync_settled().await.unwrap();
            assert_eq!(report.accepted, 1, "round {round}: {report:?}");
            // Through either server: the dashboard on B hears of it.
            if postgres {
                let (event, data) = stream_b.1.next(5).await.expect("an event within 5 s");
                assert_eq!(
                    (event.as_str(), data),
                    ("changed", json!({ "shipments": [shipment] }))
                );
            }
        }
        // A coordinator reviews through the server the phones used least
        // recently, whose cached copies are behind.
        let (api, token) = if round % 2 == 0 {
            (&b, &coordinator_b.token)
        } else {
            (&a, &world.coordinator.token)
        };
        let (status, body) = api
            .post(
                Some(token),
                &format!("/api/v1/shipments/{SHIPMENT}/reviews"),
                &json!({ "id": format!("review-{round}"), "note": "seen" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "review through a server: {body}");
        if postgres {
            let (event, data) = stream_b.1.next(5).await.expect("an event within 5 s");
            assert_eq!(
                (event.as_str(), data),
                ("changed", json!({ "shipments": [SHIPMENT] }))
            );
        }
    }

    // Every phone catches up through both servers and ends up with what
    // both servers hold, every receipt once.
    for phone in &mut phones {
        for api in [&a, &b] {
            phone.point_at(api);
            phone.sync_settled().await.unwrap();
        }
    }
    let mut total = 0;
    for shipment in [SHIPMENT, SECOND_SHIPMENT] {
        let via_a = receipts_via(&a, &world.coordinator.token, shipment).await;
        let via_b = receipts_via(&b, &coordinator_b.token, shipment).await;
        assert_eq!(via_a, via_b);
        total += via_a.len();
        let reviews = |d: &aidsync_shared::model::Shipment| d.reviews.len();
        let on_phones: Vec<(usize, usize)> = phones
            .iter()
            .map(|p| {
                let doc = p.engine.shipment(&shipment_id(shipment)).unwrap();
                (doc.receipts.len(), reviews(&doc))
            })
            .collect();
        let expected_reviews = if shipment == SHIPMENT { 6 } else { 0 };
        assert_eq!(on_phones, vec![(via_a.len(), expected_reviews); 2]);
        let heads: Vec<_> = phones
            .iter()
            .map(|p| {
                let mut doc = p.engine.document(&shipment_id(shipment)).unwrap().clone();
                doc.get_heads()
            })
            .collect();
        assert_eq!(heads[0], heads[1], "both phones converged on {shipment}");
    }
    assert_eq!(total, recorded, "every receipt counted exactly once");
    let (changes, _) = second.db().counts().await.unwrap();
    assert!(changes > recorded as i64, "{changes} changes stored");
    second.stop().await.unwrap();
}

/// Failed logins count together however they are spread over servers.
pub async fn login_failures_count_across_servers(db: &TestDb) {
    let limits = Limits {
        login_failures_per_minute: 3,
        ..Limits::default()
    };
    let world = World::with_limits(db, limits.clone()).await;
    let second = TestServer::start_with(db.url(), limits).await.unwrap();
    let apis = [world.api.clone(), Api::new(&second.base)];
    let mut statuses = Vec::new();
    for attempt in 0..5 {
        let (status, _) = apis[attempt % 2]
            .post(
                None,
                "/api/v1/login",
                &json!({ "user": COORDINATOR, "password": "wrong" }),
            )
            .await
            .unwrap();
        statuses.push(status.as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429],
        "three failures, then both servers refuse"
    );
    let (status, body): (_, Value) = apis[1]
        .post(
            None,
            "/api/v1/login",
            &json!({ "user": COORDINATOR, "password": password(COORDINATOR) }),
        )
        .await
        .unwrap();
    assert_eq!(status, 429, "even the right password waits: {body}");
    second.stop().await.unwrap();
}

/// Two servers starting at once on a fresh database: each migration is
/// applied once (sqlx holds an advisory lock on PostgreSQL; SQLite
/// serializes writers), and both serve.
pub async fn two_servers_start_at_once(db: &TestDb) {
    let (a, b) = tokio::join!(TestServer::start(db.url()), TestServer::start(db.url()));
    let (a, b) = (a.unwrap(), b.unwrap());
    for server in [&a, &b] {
        let (status, _) = Api::new(&server.base).get(None, "/healthz").await.unwrap();
        assert_eq!(status, 200);
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
