//! Accounts and authorization: who may call what, and what happens to a
//! phone's records when its token stops working.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use aidsync_server::service::Limits;
use aidsync_shared::model::Condition;
use aidsync_shared::sync::protocol::{self, PROTOCOL_VERSION, SyncRequest};
use aidsync_tests::harness::TestDb;
use aidsync_tests::phone::{Fault, Phone, SyncError, post_raw};

use crate::common::*;

/// The callers of the matrix, in column order.
const ROLES: [&str; 7] = [
    "anonymous",
    "receiver of A",
    "receiver of B",
    "coordinator",
    "admin",
    "revoked device",
    "expired token",
];

/// One endpoint and the status each role must get. `body` gets the column
/// index, so cells that create something create something new.
struct Endpoint {
    method: Method,
    path: String,
    body: Option<fn(usize) -> Value>,
    expect: [u16; 7],
}

fn endpoint(method: Method, path: &str, expect: [u16; 7]) -> Endpoint {
    Endpoint {
        method,
        path: path.to_owned(),
        body: None,
        expect,
    }
}

fn with_body(mut e: Endpoint, body: fn(usize) -> Value) -> Endpoint {
    e.body = Some(body);
    e
}

/// A far shipment: to a facility outside the coordinator's region.
const FAR_SHIPMENT: &str = "jica-test-far";

/// Every endpoint × every role, asserted cell by cell. Sync is driven with
/// an empty upload here; what an upload may contain is the business of
/// `impersonation_is_refused`.
pub async fn authorization_matrix(db: &TestDb) {
    let world = World::new(db).await;
    let clock = world.server.clock().clone();
    let ttl = Limits::default().token_ttl_ms;

    // The expired token is issued first, then time passes: it expires
    // while every other token is still young.
    world
        .add_user("yurii", "receiver", Some(FACILITY), None)
        .await;
    let expired = world.api.login("yurii", &password("yurii")).await.unwrap();
    clock.advance(ttl - 60_000);

    // Everyone else logs in now (the world's own sessions are as old).
    let admin = world.api.login(ADMIN, &password(ADMIN)).await.unwrap();
    let coordinator = world
        .api
        .login(COORDINATOR, &password(COORDINATOR))
        .await
        .unwrap();
    let receiver_a = world.receiver("anna", FACILITY).await;
    let receiver_b = world.receiver("vira", OTHER_FACILITY).await;
    let revoked = world.api.login("anna", &password("anna")).await.unwrap();
    let (status, body) = world
        .api
        .post(
            Some(&admin.token),
            &format!("/api/v1/devices/{}/revoke", revoked.device_id),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // A spare device for the admin-only revoke cell.
    let spare = world.api.login("vira", &password("vira")).await.unwrap();
    // A shipment outside the coordinator's region, made by a coordinator
    // of every region.
    world.add_user("kenji", "coordinator", None, None).await;
    let global = world.api.login("kenji", &password("kenji")).await.unwrap();
    let (status, body) = world
        .api
        .post(
            Some(&global.token),
            "/api/v1/shipments",
            &shipment_json(FAR_SHIPMENT, FAR_FACILITY),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    clock.advance(120_000);

    let tokens: [Option<&str>; 7] = [
        None,
        Some(receiver_a.token()),
        Some(receiver_b.token()),
        Some(&coordinator.token),
        Some(&admin.token),
        Some(&revoked.token),
        Some(&expired.token),
    ];

    use Method as M;
    let matrix = vec![
        endpoint(M::GET, "/healthz", [200; 7]),
        endpoint(M::GET, "/api/v1/me", [401, 200, 200, 200, 200, 401, 401]),
        endpoint(
            M::GET,
            "/api/v1/facilities",
            [401, 200, 200, 200, 200, 401, 401],
        ),
        with_body(
            endpoint(
                M::POST,
                "/api/v1/facilities",
                [401, 403, 403, 403, 201, 401, 401],
            ),
            |n| json!({ "id": format!("new-facility-{n}"), "name": "New", "region": REGION }),
        ),
        endpoint(
            M::GET,
            "/api/v1/shipments",
            [401, 200, 200, 200, 403, 401, 401],
        ),
        endpoint(
            M::GET,
            &format!("/api/v1/shipments/{SHIPMENT}"),
            [401, 200, 404, 200, 403, 401, 401],
        ),
        endpoint(
            M::GET,
            &format!("/api/v1/shipments/{FAR_SHIPMENT}"),
            [401, 404, 404, 404, 403, 401, 401],
        ),
        with_body(
            endpoint(
                M::POST,
                "/api/v1/shipments",
                [401, 403, 403, 201, 403, 401, 401],
            ),
            |n| shipment_json(&format!("jica-matrix-{n}"), FACILITY),
        ),
        with_body(
            endpoint(
                M::POST,
                "/api/v1/shipments",
                [401, 403, 403, 403, 403, 401, 401],
            ),
            |n| shipment_json(&format!("jica-matrix-far-{n}"), FAR_FACILITY),
        ),
        endpoint(
            M::GET,
            "/api/v1/reports/receipts",
            [401, 200, 200, 200, 403, 401, 401],
        ),
        endpoint(
            M::GET,
            "/api/v1/reports/discrepancies.xlsx",
            [401, 200, 200, 200, 403, 401, 401],
        ),
        with_body(
            endpoint(
                M::POST,
                &format!("/api/v1/shipments/{SHIPMENT}/reviews"),
                [401, 403, 403, 201, 403, 401, 401],
            ),
            |n| json!({ "id": format!("review-{n}"), "note": "Seen." }),
        ),
        with_body(
            endpoint(
                M::POST,
                &format!("/api/v1/shipments/{FAR_SHIPMENT}/reviews"),
                [401, 403, 403, 404, 403, 401, 401],
            ),
            |n| json!({ "id": format!("review-far-{n}"), "note": "Seen." }),
        ),
        with_body(
            // JSON where CSV belongs: refused, after who may import at all.
            endpoint(
                M::POST,
                "/api/v1/shipments/import",
                [401, 403, 403, 415, 403, 401, 401],
            ),
            |_| json!({}),
        ),
        endpoint(M::GET, "/api/v1/users", [401, 403, 403, 403, 200, 401, 401]),
        with_body(
            endpoint(
                M::POST,
                "/api/v1/users",
                [401, 403, 403, 403, 201, 401, 401],
            ),
            |n| {
                json!({ "id": format!("new-user-{n}"), "name": "New", "role": "receiver",
                        "facility": FACILITY, "password": password("new") })
            },
        ),
        with_body(
            endpoint(
                M::POST,
                "/api/v1/users/yurii/password",
                [401, 403, 403, 403, 200, 401, 401],
            ),
            |_| json!({}),
        ),
        endpoint(
            M::GET,
            "/api/v1/devices",
            [401, 403, 403, 403, 200, 401, 401],
        ),
        with_body(
            endpoint(
                M::POST,
                &format!("/api/v1/devices/{}/revoke", spare.device_id),
                [401, 403, 403, 403, 200, 401, 401],
            ),
            |_| json!({}),
        ),
        endpoint(
            M::GET,
            "/api/v1/changes",
            [401, 403, 403, 403, 200, 401, 401],
        ),
    ];

    let mut failures = Vec::new();
    let mut check = |what: &str, role: usize, got: u16, want: u16| {
        if got != want {
            failures.push(format!("{what} as {}: {got}, expected {want}", ROLES[role]));
        }
    };
    for e in &matrix {
        for (n, token) in tokens.iter().enumerate() {
            let body = e.body.map(|b| b(n));
            let (status, _) = world
                .api
                .send(e.method.clone(), &e.path, *token, body.as_ref())
                .await
                .unwrap();
            check(
                &format!("{} {}", e.method, e.path),
                n,
                status.as_u16(),
                e.expect[n],
            );
        }
    }
    // Sync speaks CBOR.
    let empty = protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor: 0,
        docs: Vec::new(),
    });
    for (n, token) in tokens.iter().enumerate() {
        let wire = post_raw(
            &world.api.http,
            &format!("{}/api/v1/sync", world.server.base),
            *token,
            protocol::CONTENT_TYPE,
            &empty,
            false,
        )
        .await
        .unwrap();
        let want = [401, 200, 200, 200, 403, 401, 401][n];
        check("POST /api/v1/sync", n, wire.status.as_u16(), want);
    }
    // Logging out revokes the caller's own token, so it goes last.
    for (n, token) in tokens.iter().enumerate() {
        let (status, _) = world
            .api
            .post(*token, "/api/v1/logout", &json!({}))
            .await
            .unwrap();
        let want = [401, 200, 200, 200, 200, 401, 401][n];
        check("POST /api/v1/logout", n, status.as_u16(), want);
        let (status, _) = world.api.get(*token, "/api/v1/me").await.unwrap();
        check("GET /api/v1/me after logout", n, status.as_u16(), 401);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    world.server.stop().await.unwrap();
}

/// Logging in: right password, wrong password, unknown user, and a
/// disabled-looking token; `/me` says who the token belongs to.
pub async fn login_issues_a_device_and_refuses_bad_passwords(db: &TestDb) {
    let world = World::new(db).await;
    world
        .add_user("anna", "receiver", Some(FACILITY), None)
        .await;
    let session = world.api.login("anna", &password("anna")).await.unwrap();
    assert_eq!(session.user.role, "receiver");
    assert_eq!(session.user.facility.as_deref(), Some(FACILITY));
    assert_eq!(session.token.len(), 64);
    let now = aidsync_tests::now_ms();
    let ttl = Limits::default().token_ttl_ms;
    assert!((now + ttl - 60_000..=now + ttl + 60_000).contains(&session.expires_at));

    let (status, me) = world
        .api
        .get(Some(&session.token), "/api/v1/me")
        .await
        .unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["id"], "anna");
    assert_eq!(me["device_id"], session.device_id.as_str());
    assert_eq!(me["actor_id"], session.actor_id.as_str());
    assert!(me.get("password_hash").is_none() && me["user"].get("password_hash").is_none());

    // A second login is a second device with its own actor.
    let again = world.api.login("anna", &password("anna")).await.unwrap();
    assert_ne!(again.device_id, session.device_id);
    assert_ne!(again.actor_id, session.actor_id);
    assert_ne!(again.token, session.token);

    // Wrong password and unknown user are the same answer.
    for (user, pw) in [("anna", "wrong password!"), ("nobody", "whatever password")] {
        let (status, body) = world
            .api
            .post(
                None,
                "/api/v1/login",
                &json!({ "user": user, "password": pw }),
            )
            .await
            .unwrap();
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "wrong user name or password");
    }
    // The admin sees both devices, and no token or hash in the listing.
    let (status, devices) = world
        .api
        .get(Some(&world.admin.token), "/api/v1/devices?user=anna")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    for d in devices {
        assert!(
            d.get("token").is_none() && d.get("token_hash").is_none(),
            "{d}"
        );
        assert_eq!(d["revoked_at"], Value::Null);
    }
    world.server.stop().await.unwrap();
}

/// A revoked or expired phone is shut out at its very next request, keeps
/// every unsynced record, and syncs them after its user logs in again.
/// What a revoked device synced before stays, attributed to it.
pub async fn revoked_and_expired_phones_keep_their_outbox(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();
    anna.record(&id, receipt("line-1", 1, Condition::Good, &["US-1"]))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();
    let first_device = anna.session.device_id.clone();

    // Offline, two more receipts; meanwhile the admin revokes the phone.
    anna.record(&id, receipt("line-1", 1, Condition::Good, &["US-2"]))
        .await
        .unwrap();
    anna.record(&id, receipt("line-2", 1, Condition::Damaged, &[]))
        .await
        .unwrap();
    let (status, body) = world
        .api
        .post(
            Some(&world.admin.token),
            &format!("/api/v1/devices/{first_device}/revoke"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["revoked_at"].is_i64());

    match anna.sync(Fault::None).await {
        Err(SyncError::Status { status, .. }) => assert_eq!(status, StatusCode::UNAUTHORIZED),
        other => panic!("a revoked token must be refused, got {other:?}"),
    }
    assert_eq!(anna.engine.pending(), 2, "the outbox survives revocation");
    // The synced receipt stays, attributed to the revoked device.
    let detail = world.detail(SHIPMENT).await;
    assert_eq!(detail["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(detail["receipts"][0]["device_id"], first_device.as_str());
    assert_eq!(detail["receipts"][0]["recorded_by"], "anna");

    // Anna logs in again on the same phone: the outbox syncs.
    anna.login_again(&world.api, &password("anna"))
        .await
        .unwrap();
    assert_ne!(anna.session.device_id, first_device);
    let report = anna.sync_settled().await.unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(anna.engine.pending(), 0);
    let detail = world.detail(SHIPMENT).await;
    let receipts = detail["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 3);
    assert!(receipts.iter().all(|r| r["recorded_by"] == "anna"));
    // Recorded on the first device: the receipts and the audit trail both
    // say so, though the new login delivered two of them.
    assert!(
        receipts
            .iter()
            .all(|r| r["device_id"] == first_device.as_str())
    );
    let audit_of = |device: String| {
        let api = world.api.clone();
        let token = world.admin.token.clone();
        async move {
            let (status, audit) = api
                .get(Some(&token), &format!("/api/v1/changes?device={device}"))
                .await
                .unwrap();
            assert_eq!(status, 200, "{audit}");
            audit.as_array().unwrap().clone()
        }
    };
    let first = audit_of(first_device.clone()).await;
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.iter().all(|c| c["user_id"] == "anna"));
    assert!(audit_of(anna.session.device_id.clone()).await.is_empty());

    // Weeks later the token expires: same story.
    anna.record(&id, receipt("line-2", 1, Condition::Good, &[]))
        .await
        .unwrap();
    world
        .server
        .clock()
        .advance(Limits::default().token_ttl_ms + 1);
    match anna.sync(Fault::None).await {
        Err(SyncError::Status { status, .. }) => assert_eq!(status, StatusCode::UNAUTHORIZED),
        other => panic!("an expired token must be refused, got {other:?}"),
    }
    assert_eq!(anna.engine.pending(), 1);
    anna.login_again(&world.api, &password("anna"))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();
    assert_eq!(anna.engine.pending(), 0);
    // The coordinator's token expired too; a fresh one reads the result.
    let olena = Phone::login(&world.api, COORDINATOR, &password(COORDINATOR))
        .await
        .unwrap();
    let (status, detail) = world
        .api
        .get(
            Some(olena.token()),
            &format!("/api/v1/shipments/{SHIPMENT}"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(detail["receipts"].as_array().unwrap().len(), 4);
    world.server.stop().await.unwrap();
}

/// Sends a request, returning the status and the `Retry-After` seconds.
async fn status_and_retry_after(request: reqwest::RequestBuilder) -> (u16, Option<u64>) {
    let response = request.send().await.unwrap();
    let retry = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), retry)
}

async fn get_with_retry_after(
    world: &World,
    token: Option<&str>,
    path: &str,
) -> (u16, Option<u64>) {
    let mut request = world.api.http.get(format!("{}{path}", world.server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    status_and_retry_after(request).await
}

async fn login_status(world: &World, user: &str, pw: &str) -> (u16, Option<u64>) {
    let request = world
        .api
        .http
        .post(format!("{}/api/v1/login", world.server.base))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({ "user": user, "password": pw }).to_string());
    status_and_retry_after(request).await
}

/// Guessing passwords is throttled; so are floods of requests. Each limit
/// answers 429 with `Retry-After`, and lifts when the time has passed.
pub async fn brute_force_and_floods_are_throttled(db: &TestDb) {
    let limits = Limits {
        login_failures_per_minute: 3,
        requests_per_minute_per_token: 20,
        ..Limits::default()
    };
    let world = World::with_limits(db, limits).await;
    let clock = world.server.clock().clone();
    world
        .add_user("anna", "receiver", Some(FACILITY), None)
        .await;

    for _ in 0..3 {
        assert_eq!(
            login_status(&world, "anna", "not her password").await,
            (401, None)
        );
    }
    // Now even the right password is refused until the wait is over.
    let (status, retry) = login_status(&world, "anna", &password("anna")).await;
    assert_eq!(status, 429);
    let retry = retry.expect("Retry-After on a 429");
    assert!((1..=20).contains(&retry), "{retry}");
    // The address is throttled too, whichever user it tries next.
    assert_eq!(
        login_status(&world, COORDINATOR, "a guess at olena")
            .await
            .0,
        429
    );
    clock.advance(retry as i64 * 1000);
    assert_eq!(login_status(&world, "anna", &password("anna")).await.0, 201);

    // A token may make 20 requests a minute: the 21st waits.
    let session = world.api.login("anna", &password("anna")).await.unwrap();
    for n in 0..20 {
        let (status, _) = get_with_retry_after(&world, Some(&session.token), "/api/v1/me").await;
        assert_eq!(status, 200, "request {n}");
    }
    let (status, retry) = get_with_retry_after(&world, Some(&session.token), "/api/v1/me").await;
    assert_eq!(status, 429);
    assert_eq!(retry, Some(3), "one request every 3 s at 20 a minute");
    // Other tokens are not affected; time lifts the limit.
    assert_eq!(
        get_with_retry_after(&world, Some(&world.admin.token), "/api/v1/me")
            .await
            .0,
        200
    );
    clock.advance(3_000);
    assert_eq!(
        get_with_retry_after(&world, Some(&session.token), "/api/v1/me")
            .await
            .0,
        200
    );
    world.server.stop().await.unwrap();
}

/// Per-IP limits and oversized requests: 429 and 413 with a reason; a
/// document that would outgrow its limit is refused and nothing is stored.
pub async fn oversized_and_over_rate_requests_are_refused(db: &TestDb) {
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        max_document_bytes: 8 * 1024,
        requests_per_minute_per_ip: 100,
        ..Limits::default()
    };
    let world = World::with_limits(db, limits).await;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    anna.sync_settled().await.unwrap();

    // Too large a body.
    let wire = post_raw(
        &world.api.http,
        &format!("{}/api/v1/sync", world.server.base),
        Some(anna.token()),
        protocol::CONTENT_TYPE,
        &vec![0u8; 65 * 1024],
        false,
    )
    .await
    .unwrap();
    assert_eq!(wire.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Too large a document: 40 receipts at once would pass 8 KiB.
    let before = aidsync_tests::fingerprint::Fingerprint::take(db.url())
        .await
        .unwrap();
    for n in 0..40 {
        let serial = format!("US-{n}");
        anna.record(
            &id,
            receipt("line-1", 1, Condition::Good, &[serial.as_str()]),
        )
        .await
        .unwrap();
    }
    let report = anna.sync(Fault::None).await.unwrap();
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert!(
        report.refused[0].1.contains("would exceed 8192 bytes"),
        "{report:?}"
    );
    assert_eq!(
        anna.engine.pending(),
        40,
        "refused records stay on the phone"
    );
    assert_eq!(
        aidsync_tests::fingerprint::Fingerprint::take(db.url())
            .await
            .unwrap(),
        before
    );

    // Security headers are on every response.
    let response = world
        .api
        .http
        .get(format!("{}/healthz", world.server.base))
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    // One address may make 100 requests a minute, whoever it claims to be.
    let mut refused = None;
    for n in 0..=100 {
        let (status, retry) = get_with_retry_after(&world, None, "/healthz").await;
        if status == 429 {
            refused = Some((n, retry));
            break;
        }
        assert_eq!(status, 200);
    }
    let (n, retry) = refused.expect("the 101st request in a minute is refused");
    assert!(n <= 100, "{n}");
    assert!(retry.is_some_and(|s| s >= 1));
    world.server.clock().advance(60_000);
    assert_eq!(get_with_retry_after(&world, None, "/healthz").await.0, 200);
    world.server.stop().await.unwrap();
}
