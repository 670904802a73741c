//! The phone's engine against an in-process server made of the shared
//! merge step: what "saved" means, what a sync sends, what it applies.

#![allow(clippy::unwrap_used)]

use automerge::{ActorId, Change};
use serde_bytes::ByteBuf;

use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewShipment, Reason, Recorder, ShipmentDoc,
};
use aidsync_shared::roles::{Forbidden, Role};
use aidsync_shared::sync::client::{ClientEngine, ClientError, Identity, MemoryStore, Recovery};
use aidsync_shared::sync::protocol::{
    Changes, DocDownload, RefusalCode, SyncRequest, SyncResponse, UploadResult, heads_to_wire,
};
use aidsync_shared::sync::server::{Uploader, merge_upload};

const T0: i64 = 1_790_000_000_000;

/// The smallest server: one document, a version per accepted upload.
struct FakeServer {
    doc: ShipmentDoc,
    version: u64,
    /// Who the phone's token says it is.
    uploader: Uploader,
}

/// The phone's identity after Anna, a receiver, logs in on `device`.
fn anna_on(device: &str, actor: &ActorId) -> Identity {
    Identity {
        user: UserId::parse("anna").unwrap(),
        role: Role::Receiver,
        device: DeviceId::parse(device).unwrap(),
        actor: actor.to_hex_string(),
    }
}

/// Anna, a receiver, holding `device` whose changes are signed by `actor`.
fn anna(device: &str, actor: &ActorId) -> Uploader {
    let who = Recorder {
        user: UserId::parse("anna").unwrap(),
        device: DeviceId::parse(device).unwrap(),
    };
    Uploader::single_device(&who, Role::Receiver, actor.clone())
}

impl FakeServer {
    fn new(uploader: Uploader) -> FakeServer {
        let new = NewShipment {
            id: ShipmentId::parse("jica-engine-1").unwrap(),
            donor: "JICA".into(),
            programme: String::new(),
            reference: String::new(),
            destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
            expected_on: None,
            note: String::new(),
            lines: vec![Line {
                id: LineId::parse("us").unwrap(),
                item: "Ultrasound".into(),
                category: "ultrasound".into(),
                unit: "unit".into(),
                quantity_expected: 5,
                serials_expected: Vec::new(),
                accessories: Vec::new(),
                unit_value: None,
            }],
        };
        let doc = ShipmentDoc::create(
            &new,
            &UserId::parse("olena").unwrap(),
            ActorId::random(),
            T0,
        )
        .unwrap();
        FakeServer {
            doc,
            version: 1,
            uploader,
        }
    }

    fn id(&self) -> ShipmentId {
        ShipmentId::parse("jica-engine-1").unwrap()
    }

    /// Handles a request the way the real server does, minus storage.
    fn sync(&mut self, request: &SyncRequest) -> SyncResponse {
        let mut upload = None;
        for up in &request.docs {
            let changes: Vec<Change> = up.changes.decode().unwrap();
            upload = Some(match merge_upload(&self.doc, changes, &self.uploader) {
                Ok(merged) => {
                    let new = merged.new_changes.len() as u32;
                    self.doc = merged.doc;
                    if new > 0 {
                        self.version += 1;
                    }
                    UploadResult::Accepted { new }
                }
                Err(refusal) => UploadResult::Refused {
                    code: refusal.code().unwrap(),
                    reason: refusal.to_string(),
                },
            });
        }
        let fresh = request.cursor == 0;
        let heads = self.doc.heads();
        SyncResponse {
            cursor: self.version,
            reset: false,
            docs: vec![DocDownload {
                id: self.id(),
                upload,
                snapshot: fresh.then(|| ByteBuf::from(self.doc.save())),
                changes: Changes::default(),
                heads: heads_to_wire(&heads),
            }],
        }
    }
}

fn receipt(id: &str, quantity: u64) -> NewReceipt {
    NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse("us").unwrap(),
        quantity,
        condition: Condition::Good,
        serials: Vec::new(),
        note: String::new(),
        voids: None,
        stage: None,
        // Any reason meets the model\'s rule on short, over or damaged
        // counts; these receipts are about something else.
        reason: Some(Reason::Short),
        delivery_id: None,
    }
}

async fn phone() -> (ClientEngine<MemoryStore>, FakeServer) {
    let actor = ActorId::random();
    let mut engine = ClientEngine::open(MemoryStore::default()).await.unwrap();
    engine
        .set_identity(anna_on("anna-phone", &actor))
        .await
        .unwrap();
    let mut server = FakeServer::new(anna("anna-phone", &actor));
    let request = engine.sync_request();
    assert!(request.docs.is_empty());
    let report = engine
        .apply_response(server.sync(&request), T0)
        .await
        .unwrap();
    assert_eq!(report.updated, 1);
    (engine, server)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    // The engine's futures never wait on anything: polling once completes them.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("engine future was not ready"),
    }
}

#[test]
fn offline_records_wait_in_the_outbox_until_acknowledged() {
    block_on(async {
        let (mut engine, mut server) = phone().await;
        let id = server.id();
        engine
            .record_receipt(&id, receipt("r1", 2), T0 + 1)
            .await
            .unwrap();
        engine
            .record_receipt(&id, receipt("r2", 1), T0 + 2)
            .await
            .unwrap();
        assert_eq!(engine.pending(), 2);

        // A reopened engine (the app restarted) still has them pending.
        let store = engine.store().clone();
        let mut engine = ClientEngine::open(store).await.unwrap();
        assert_eq!(engine.pending(), 2);
        assert_eq!(engine.shipment(&id).unwrap().receipts.len(), 2);

        let request = engine.sync_request();
        assert_eq!(request.docs.len(), 1);
        assert_eq!(request.docs[0].changes.decode().unwrap().len(), 2);
        let response = server.sync(&request);
        assert_eq!(
            response.docs[0].upload,
            Some(UploadResult::Accepted { new: 2 })
        );
        // The same answer applied twice (a duplicated delivery) is harmless.
        let report = engine
            .apply_response(response.clone(), T0 + 3)
            .await
            .unwrap();
        assert_eq!(report.accepted, 1);
        engine.apply_response(response, T0 + 4).await.unwrap();
        assert_eq!(engine.pending(), 0);
        assert_eq!(engine.meta().last_sync_at, Some(T0 + 4));
        assert_eq!(server.doc.read().unwrap().receipts.len(), 2);
        assert!(engine.sync_request().docs.is_empty());
    });
}

#[test]
fn a_failed_write_is_not_a_saved_record() {
    block_on(async {
        let (mut engine, server) = phone().await;
        let id = server.id();
        let mut store = engine.store().clone();
        store.fail_next_write = true;
        let mut engine_full_disk = ClientEngine::open(store).await.unwrap();
        let err = engine_full_disk
            .record_receipt(&id, receipt("r1", 1), T0 + 1)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Store(_)));
        assert_eq!(engine_full_disk.pending(), 0);
        assert!(engine_full_disk.shipment(&id).unwrap().receipts.is_empty());
        // The next attempt works, with the same receipt id.
        engine_full_disk
            .record_receipt(&id, receipt("r1", 1), T0 + 2)
            .await
            .unwrap();
        assert_eq!(engine_full_disk.pending(), 1);

        // Model refusals come back as such, and save nothing.
        let err = engine
            .record_receipt(&id, receipt("r2", 0), T0 + 3)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Model(_)));
        assert_eq!(engine.pending(), 0);
        let err = engine
            .record_receipt(
                &ShipmentId::parse("nope").unwrap(),
                receipt("r3", 1),
                T0 + 4,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::UnknownShipment(_)));
    });
}

#[test]
fn refusals_are_reported_and_kept_for_the_ui() {
    block_on(async {
        let (mut engine, mut server) = phone().await;
        let id = server.id();
        // The server expects another actor: every upload is refused.
        server.uploader = anna("anna-phone", &ActorId::random());
        engine
            .record_receipt(&id, receipt("r1", 1), T0 + 1)
            .await
            .unwrap();
        let response = server.sync(&engine.sync_request());
        let report = engine.apply_response(response, T0 + 2).await.unwrap();
        assert_eq!(report.accepted, 0);
        assert_eq!(report.refused.len(), 1);
        assert!(matches!(
            server.sync(&engine.sync_request()).docs[0].upload,
            Some(UploadResult::Refused {
                code: RefusalCode::WrongActor,
                ..
            })
        ));
        assert!(engine.refusal(&id).is_some());
        // Nothing is dropped: the record still waits.
        assert_eq!(engine.pending(), 1);
    });
}

#[test]
fn the_phone_refuses_what_its_role_may_not_do() {
    block_on(async {
        let (mut engine, server) = phone().await;
        let id = server.id();
        let mut identity = engine.identity().unwrap().clone();
        identity.role = Role::Coordinator;
        engine.set_identity(identity).await.unwrap();
        let err = engine
            .record_receipt(&id, receipt("r1", 1), T0 + 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Forbidden(Forbidden::Role { .. })),
            "{err}"
        );
        assert_eq!(engine.pending(), 0);
        assert!(engine.shipment(&id).unwrap().receipts.is_empty());
    });
}

#[test]
fn records_made_before_a_new_login_still_sync() {
    block_on(async {
        let (mut engine, mut server) = phone().await;
        let id = server.id();
        engine
            .record_receipt(&id, receipt("before", 1), T0 + 1)
            .await
            .unwrap();
        // The token expired; Anna logs in again and gets a new device.
        let old = server.uploader.clone();
        let new_actor = ActorId::random();
        engine
            .set_identity(anna_on("anna-phone-2", &new_actor))
            .await
            .unwrap();
        engine
            .record_receipt(&id, receipt("after", 2), T0 + 2)
            .await
            .unwrap();
        assert_eq!(engine.pending(), 2);

        // Knowing only the new device, the server refuses the old record...
        server.uploader = anna("anna-phone-2", &new_actor);
        let response = server.sync(&engine.sync_request());
        assert!(matches!(
            response.docs[0].upload,
            Some(UploadResult::Refused {
                code: RefusalCode::WrongActor,
                ..
            })
        ));
        // ...knowing all of Anna's devices (as the real one does), it takes both.
        let mut all = anna("anna-phone-2", &new_actor);
        all.editor.devices.extend(old.editor.devices);
        all.actors.extend(old.actors);
        server.uploader = all;
        let response = server.sync(&engine.sync_request());
        assert_eq!(
            response.docs[0].upload,
            Some(UploadResult::Accepted { new: 2 })
        );
        engine.apply_response(response, T0 + 3).await.unwrap();
        assert_eq!(engine.pending(), 0);
        let receipts = server.doc.read().unwrap().receipts;
        let devices: Vec<&str> = receipts.values().map(|r| r.device_id.as_str()).collect();
        assert_eq!(devices, ["anna-phone-2", "anna-phone"]);
    });
}

#[test]
fn refused_records_are_rebuilt_on_the_servers_copy() {
    block_on(async {
        let (mut engine, mut server) = phone().await;
        let id = server.id();
        engine
            .record_receipt(&id, receipt("synced", 1), T0 + 1)
            .await
            .unwrap();
        let response = server.sync(&engine.sync_request());
        engine.apply_response(response, T0 + 2).await.unwrap();
        let err = engine.discard_refused(&id).await.unwrap_err();
        assert!(matches!(err, ClientError::NothingRefused(_)), "{err}");

        // A record from a device the server has since forgotten, then two
        // more after logging in again: all three are stuck behind the first.
        engine
            .record_receipt(&id, receipt("old-device", 2), T0 + 3)
            .await
            .unwrap();
        let new_actor = ActorId::random();
        engine
            .set_identity(anna_on("anna-phone-2", &new_actor))
            .await
            .unwrap();
        engine
            .record_receipt(&id, receipt("after", 3), T0 + 4)
            .await
            .unwrap();
        let mut void = receipt("void-old", 0);
        void.voids = Some(ReceiptId::parse("old-device").unwrap());
        engine.record_receipt(&id, void, T0 + 5).await.unwrap();
        server.uploader = anna("anna-phone-2", &new_actor);
        let response = server.sync(&engine.sync_request());
        let report = engine.apply_response(response, T0 + 6).await.unwrap();
        assert_eq!(report.refused.len(), 1);
        assert_eq!(engine.pending(), 3);

        let Recovery {
            kept, discarded, ..
        } = engine.discard_refused(&id).await.unwrap();
        let kept: Vec<(&str, i64, &str)> = kept
            .iter()
            .map(|r| (r.id.as_str(), r.recorded_at, r.device_id.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("old-device", T0 + 3, "anna-phone-2"),
                ("after", T0 + 4, "anna-phone-2"),
                ("void-old", T0 + 5, "anna-phone-2"),
            ]
        );
        assert!(discarded.is_empty());
        assert_eq!(engine.refusal(&id), None);
        assert_eq!(engine.pending(), 3);
        // The rebuilt document is what the store holds.
        let reopened = ClientEngine::open(engine.store().clone()).await.unwrap();
        assert_eq!(
            reopened.shipment(&id).unwrap(),
            engine.shipment(&id).unwrap()
        );

        let response = server.sync(&engine.sync_request());
        assert_eq!(
            response.docs[0].upload,
            Some(UploadResult::Accepted { new: 3 })
        );
        engine.apply_response(response, T0 + 7).await.unwrap();
        assert_eq!(engine.pending(), 0);
        assert_eq!(server.doc.read().unwrap().receipts.len(), 4);
        assert_eq!(engine.shipment(&id).unwrap(), server.doc.read().unwrap());
    });
}

#[test]
fn another_user_cannot_log_in_over_unsynced_records() {
    block_on(async {
        let (mut engine, mut server) = phone().await;
        let id = server.id();
        engine
            .record_receipt(&id, receipt("anna-1", 1), T0 + 1)
            .await
            .unwrap();
        let iryna = Identity {
            user: UserId::parse("iryna").unwrap(),
            role: Role::Receiver,
            device: DeviceId::parse("iryna-phone").unwrap(),
            actor: ActorId::random().to_hex_string(),
        };
        let err = engine.set_identity(iryna.clone()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::OtherUsersRecordsPending { pending: 1, .. }
            ),
            "{err}"
        );
        assert_eq!(engine.identity().unwrap().user.as_str(), "anna");
        // Once Anna's record is synced, Iryna may take over the phone.
        let response = server.sync(&engine.sync_request());
        engine.apply_response(response, T0 + 2).await.unwrap();
        assert_eq!(engine.pending(), 0);
        engine.set_identity(iryna).await.unwrap();
        assert_eq!(engine.identity().unwrap().user.as_str(), "iryna");
    });
}
