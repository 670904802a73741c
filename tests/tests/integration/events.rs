//! Live event streams last no longer than their token: a revocation (by an
//! admin, by logging out, by a password reset, or by another process on the
//! same database) or the token's expiry ends the stream, after a final
//! `event: unauthorized`, while streams of tokens that still work carry on.

use serde_json::json;

use aidsync_server::service::{Limits, devices};
use aidsync_server::storage::Db;
use aidsync_tests::harness::TestDb;

use crate::common::{ADMIN, COORDINATOR, EventStream, FACILITY, Read, World, password};

/// How long a stream may take to end: revocations through the API end it
/// at once, others within the server's 2 s re-check.
const END_WITHIN_SECS: u64 = 5;

/// A stream whose token works is still open and hears of a new shipment.
/// `token` must be a coordinator's that still works.
async fn still_hears(world: &World, token: &str, stream: &mut EventStream, shipment: &str) {
    let (status, body) = world
        .api
        .post(
            Some(token),
            "/api/v1/shipments",
            &crate::common::shipment_json(shipment, FACILITY),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "creating {shipment}: {body}");
    assert_eq!(
        stream.read(5).await,
        Read::Event("changed".into(), json!({ "shipments": [shipment] })),
        "a stream whose token works keeps streaming"
    );
}

/// The token is refused everywhere, a new stream included.
async fn refused(world: &World, token: &str) {
    let (status, _) = world.api.get(Some(token), "/api/v1/me").await.unwrap();
    assert_eq!(status, 401);
    let (status, _) = EventStream::open(world, token).await;
    assert_eq!(status, 401);
}

/// A second login of the coordinator (another laptop).
async fn coordinator_laptop(world: &World) -> aidsync_server::service::auth::Session {
    world
        .api
        .login(COORDINATOR, &password(COORDINATOR))
        .await
        .unwrap()
}

/// An admin revokes a device through the API: its open stream ends at once;
/// the coordinator's other device streams on.
pub async fn streams_end_when_an_admin_revokes_the_device(db: &TestDb) {
    let world = World::new(db).await;
    let laptop = coordinator_laptop(&world).await;
    let mut doomed = EventStream::opened(&world, &laptop.token).await;
    let mut bystander = EventStream::opened(&world, &world.coordinator.token).await;

    let (status, body) = world
        .api
        .post(
            Some(&world.admin.token),
            &format!("/api/v1/devices/{}/revoke", laptop.device_id),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(doomed.until_end(END_WITHIN_SECS).await, ["unauthorized"]);
    refused(&world, &laptop.token).await;

    still_hears(
        &world,
        &world.coordinator.token,
        &mut bystander,
        "jica-live-001",
    )
    .await;
    world.server.stop().await.unwrap();
}

/// Logging out ends the device's own open stream.
pub async fn streams_end_at_logout(db: &TestDb) {
    let world = World::new(db).await;
    let laptop = coordinator_laptop(&world).await;
    let mut doomed = EventStream::opened(&world, &laptop.token).await;
    let mut bystander = EventStream::opened(&world, &world.coordinator.token).await;

    let (status, body) = world
        .api
        .post(Some(&laptop.token), "/api/v1/logout", &json!({}))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(doomed.until_end(END_WITHIN_SECS).await, ["unauthorized"]);
    refused(&world, &laptop.token).await;

    still_hears(
        &world,
        &world.coordinator.token,
        &mut bystander,
        "jica-live-002",
    )
    .await;
    world.server.stop().await.unwrap();
}

/// A password reset logs the user out everywhere: every stream of theirs
/// ends; another user's streams on.
pub async fn streams_end_when_the_password_is_reset(db: &TestDb) {
    let world = World::new(db).await;
    let phone = world.receiver("anna", FACILITY).await;
    let tablet = world.api.login("anna", &password("anna")).await.unwrap();
    let mut on_phone = EventStream::opened(&world, phone.token()).await;
    let mut on_tablet = EventStream::opened(&world, &tablet.token).await;
    let mut bystander = EventStream::opened(&world, &world.coordinator.token).await;

    let (status, body) = world
        .api
        .post(
            Some(&world.admin.token),
            "/api/v1/users/anna/password",
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(on_phone.until_end(END_WITHIN_SECS).await, ["unauthorized"]);
    assert_eq!(on_tablet.until_end(END_WITHIN_SECS).await, ["unauthorized"]);
    refused(&world, phone.token()).await;
    refused(&world, &tablet.token).await;

    // With the new password, Anna streams again.
    let new_password = body["password"].as_str().unwrap();
    let again = world.api.login("anna", new_password).await.unwrap();
    let mut renewed = EventStream::opened(&world, &again.token).await;
    still_hears(
        &world,
        &world.coordinator.token,
        &mut bystander,
        "jica-live-003",
    )
    .await;
    assert_eq!(
        renewed.read(5).await,
        Read::Event("changed".into(), json!({ "shipments": ["jica-live-003"] }))
    );
    world.server.stop().await.unwrap();
}

/// A stream ends when its token expires (the server's clock moves past
/// `expires_at`), even with nothing revoked; a token renewed past that
/// point streams on.
pub async fn streams_end_when_the_token_expires(db: &TestDb) {
    let world = World::new(db).await;
    let ttl_ms = Limits::default().token_ttl_ms;
    let renewed = coordinator_laptop(&world).await;
    // This device's token outlives the jump below; every other one expires.
    world
        .server
        .db()
        .set_device_expiry(
            &renewed.device_id,
            world.server.clock().now_ms() + 2 * ttl_ms,
        )
        .await
        .unwrap();
    let mut doomed = EventStream::opened(&world, &world.coordinator.token).await;
    let mut bystander = EventStream::opened(&world, &renewed.token).await;

    world.server.clock().advance(ttl_ms);
    assert_eq!(doomed.until_end(END_WITHIN_SECS).await, ["unauthorized"]);
    refused(&world, &world.coordinator.token).await;

    still_hears(&world, &renewed.token, &mut bystander, "jica-live-004").await;
    world.server.stop().await.unwrap();
}

/// `aidsync admin device revoke` runs in another process on the same
/// database, which this server hears nothing from: its streams' periodic
/// re-check ends the revoked device's stream within seconds.
pub async fn streams_end_when_another_process_revokes_the_device(db: &TestDb) {
    let world = World::new(db).await;
    let laptop = coordinator_laptop(&world).await;
    let mut doomed = EventStream::opened(&world, &laptop.token).await;
    let mut bystander = EventStream::opened(&world, &world.coordinator.token).await;

    // What the CLI does: its own pool, then the same service call.
    let cli = Db::connect(db.url()).await.unwrap();
    devices::revoke(&cli, &laptop.device_id, aidsync_tests::now_ms())
        .await
        .unwrap();
    cli.close().await;
    assert_eq!(doomed.until_end(END_WITHIN_SECS).await, ["unauthorized"]);
    refused(&world, &laptop.token).await;

    // The bystander went through the same re-checks and streams on.
    still_hears(
        &world,
        &world.coordinator.token,
        &mut bystander,
        "jica-live-005",
    )
    .await;
    // The admin's token was never at stake.
    let (status, _) = world
        .api
        .get(Some(&world.admin.token), "/api/v1/me")
        .await
        .unwrap();
    assert_eq!(status, 200, "{ADMIN} still logged in");
    world.server.stop().await.unwrap();
}
