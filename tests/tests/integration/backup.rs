//! The backup drill: a copy taken while serving, restored after more was
//! synced, and every phone getting back to the server what it lost.

use aidsync_shared::model::Condition;
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::Api;

use crate::common::*;

/// SQLite only: `admin backup` is `VACUUM INTO` (PostgreSQL has pg_dump,
/// and the same epoch rule via `admin mark-restored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_gets_back_what_phones_still_hold() {
    let db = TestDb::sqlite().unwrap();
    let db_path = db.url().strip_prefix("sqlite:").unwrap().to_owned();
    let backup_dir = tempfile::tempdir().unwrap();
    let backup = backup_dir.path().join("backup.db");

    let world = World::new(&db).await;
    let first = shipment_id(SHIPMENT);
    let second = shipment_id(SECOND_SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    anna.sync_settled().await.unwrap();
    bohdan.sync_settled().await.unwrap();
    anna.record(&first, receipt("line-1", 1, Condition::Good, &["US-1"]))
        .await
        .unwrap();
    anna.sync_settled().await.unwrap();

    // The backup, while the server serves.
    let epoch = aidsync_server::service::sync::new_epoch(rand::random());
    world
        .server
        .db()
        .backup_sqlite(backup.to_str().unwrap(), epoch)
        .await
        .unwrap()
        .expect("a SQLite database backs up");

    // After it, both phones sync more: this is what the restore loses.
    anna.record(&first, receipt("line-1", 1, Condition::Damaged, &["US-2"]))
        .await
        .unwrap();
    bohdan
        .record(&first, receipt("line-2", 1, Condition::Good, &[]))
        .await
        .unwrap();
    assert_eq!(anna.sync_settled().await.unwrap().accepted, 1);
    assert_eq!(bohdan.sync_settled().await.unwrap().accepted, 1);
    anna.sync_settled().await.unwrap();
    assert_eq!(anna.engine.shipment(&first).unwrap().receipts.len(), 3);

    // The disk dies; the backup goes in the database's place.
    let coordinator = world.coordinator.token.clone();
    world.server.stop().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db_path}{suffix}"));
    }
    std::fs::copy(&backup, &db_path).unwrap();
    let server = TestServer::start(db.url()).await.unwrap();
    let api = Api::new(&server.base);
    // The backup file alone carries its new timeline.
    let restored_epoch = {
        let mut tx = server.db().begin_read().await.unwrap();
        let e = tx.current_epoch().await.unwrap();
        tx.commit().await.unwrap();
        e
    };
    assert_eq!(
        restored_epoch, epoch,
        "the backup is marked in its own file"
    );
    let lost = detail_receipts(&api, &coordinator, SHIPMENT).await;
    assert_eq!(lost, 1, "the backup predates two receipts");

    // Bohdan comes back first and is busy on the *other* shipment, so the
    // restored server hands out versions past Anna's old cursor before she
    // syncs: only the epoch tells her cursor comes from a lost timeline.
    let mut bohdan = bohdan.moved_to(&api);
    bohdan.sync_settled().await.unwrap();
    for i in 0..4 {
        bohdan
            .record(
                &second,
                receipt("line-1", 1, Condition::Good, &[&format!("S2-{i}")]),
            )
            .await
            .unwrap();
        bohdan.sync_settled().await.unwrap();
    }
    let mut anna = anna.moved_to(&api);
    anna.sync_settled().await.unwrap();
    anna.sync_settled().await.unwrap();
    bohdan.sync_settled().await.unwrap();

    assert_eq!(anna.engine.pending(), 0);
    assert_eq!(bohdan.engine.pending(), 0);
    assert_eq!(
        detail_receipts(&api, &coordinator, SHIPMENT).await,
        3,
        "nothing lost"
    );
    assert_eq!(
        detail_receipts(&api, &coordinator, SECOND_SHIPMENT).await,
        4
    );
    assert_eq!(
        anna.engine.shipment(&first).unwrap(),
        bohdan.engine.shipment(&first).unwrap()
    );
    server.stop().await.unwrap();
}

async fn detail_receipts(api: &Api, token: &str, id: &str) -> usize {
    let (status, detail) = api
        .get(Some(token), &format!("/api/v1/shipments/{id}"))
        .await
        .unwrap();
    assert!(status.is_success(), "{status}: {detail}");
    detail["receipts"].as_array().unwrap().len()
}
