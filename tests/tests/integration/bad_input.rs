//! Client mistakes and malice: each gets a clear 4xx with a reason, and the
//! database is left exactly as it was.

use automerge::{ActorId, ReadDoc, ScalarValue, transaction::Transactable};
use reqwest::StatusCode;
use serde_bytes::ByteBuf;
use serde_json::json;

use aidsync_server::service::Limits;
use aidsync_shared::ids::{ReviewId, ShipmentId};
use aidsync_shared::model::{Condition, NewReview, Recorder, ShipmentDoc, Verdict, keys};
use aidsync_shared::sync::protocol::{
    self, Changes, DocUpload, PROTOCOL_VERSION, RefusalCode, SyncRequest, SyncResponse,
    UploadResult,
};
use aidsync_tests::fingerprint::Fingerprint;
use aidsync_tests::harness::TestDb;
use aidsync_tests::now_ms;
use aidsync_tests::phone::{Phone, WireResponse, post_raw};

use crate::common::*;

const MAX_BODY: usize = 256 * 1024;

/// A phone's copy of a shipment, to forge uploads from.
fn forge(phone: &Phone, id: &ShipmentId) -> ShipmentDoc {
    let mut doc = ShipmentDoc::from_automerge(phone.engine.document(id).unwrap().clone());
    doc.set_actor(ActorId::try_from(phone.session.actor_id.as_str()).unwrap());
    doc
}

fn recorder(phone: &Phone) -> Recorder {
    let identity = aidsync_tests::phone::identity(&phone.session).unwrap();
    Recorder {
        user: identity.user,
        device: identity.device,
    }
}

/// One upload of every change `doc` made since `since`.
fn upload_since(id: &str, doc: &mut ShipmentDoc, since: &[automerge::ChangeHash]) -> DocUpload {
    let am = doc.automerge_mut();
    let changes = am.get_changes(since);
    DocUpload {
        id: shipment_id(id),
        changes: Changes::chunks(&changes),
    }
}

fn request(docs: Vec<DocUpload>) -> Vec<u8> {
    protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor: 0,
        docs,
    })
}

struct Client<'a> {
    world: &'a World,
    token: String,
}

impl Client<'_> {
    async fn post(&self, content_type: &str, body: &[u8], gzip: bool) -> WireResponse {
        self.post_as(Some(&self.token), content_type, body, gzip)
            .await
    }

    async fn post_as(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
        gzip: bool,
    ) -> WireResponse {
        post_raw(
            &self.world.api.http,
            &format!("{}/api/v1/sync", self.world.server.base),
            token,
            content_type,
            body,
            gzip,
        )
        .await
        .unwrap()
    }

    async fn sync(&self, body: &[u8]) -> WireResponse {
        self.post(protocol::CONTENT_TYPE, body, true).await
    }

    /// Makes `edit` on `phone`'s copy of [`SHIPMENT`], behind the phone's
    /// back, and uploads just that edit.
    async fn upload_edit(
        &self,
        phone: &Phone,
        edit: impl FnOnce(&mut ShipmentDoc),
    ) -> WireResponse {
        let mut doc = forge(phone, &shipment_id(SHIPMENT));
        let base = doc.heads();
        edit(&mut doc);
        self.sync(&request(vec![upload_since(SHIPMENT, &mut doc, &base)]))
            .await
    }
}

/// The JSON error reason of a non-sync answer.
fn reason(wire: &WireResponse) -> String {
    let value: serde_json::Value = serde_json::from_slice(&wire.body)
        .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&wire.body)));
    value["error"].as_str().unwrap().to_owned()
}

fn upload_result(wire: &WireResponse) -> UploadResult {
    // The answer also carries every document the (cursor 0) caller lacks;
    // exactly one of them answers the one upload.
    let response: SyncResponse = protocol::decode(&wire.body).unwrap();
    let mut results = response.docs.into_iter().filter_map(|d| d.upload);
    let result = results.next().expect("no upload result");
    assert!(results.next().is_none(), "more than one upload result");
    result
}

fn assert_refused(wire: &WireResponse, code: RefusalCode, reason_contains: &str) {
    // Changes the caller may not make are 403; changes that break the model 422.
    let status = match code {
        RefusalCode::WrongActor | RefusalCode::Forbidden => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    assert_eq!(wire.status, status);
    match upload_result(wire) {
        UploadResult::Refused { code: got, reason } => {
            assert_eq!(got, code, "{reason}");
            assert!(
                reason.contains(reason_contains),
                "reason {reason:?} should mention {reason_contains:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn bad_sync_requests_are_refused_and_change_nothing(db: &TestDb) {
    let world = World::with_limits(
        db,
        Limits {
            max_body_bytes: MAX_BODY,
            ..Limits::default()
        },
    )
    .await;
    let id = shipment_id(SHIPMENT);
    let mut phone = world.receiver("anna", FACILITY).await;
    phone
        .record(
            &shipment_id(SHIPMENT),
            receipt("line-1", 1, Condition::Good, &[]),
        )
        .await
        .unwrap_err(); // no documents yet: refused locally
    phone.sync_settled().await.unwrap();
    let stranger = world.receiver("vira", OTHER_FACILITY).await;
    let client = Client {
        world: &world,
        token: phone.token().to_owned(),
    };
    let before = Fingerprint::take(db.url()).await.unwrap();
    let unchanged = || async { assert_eq!(Fingerprint::take(db.url()).await.unwrap(), before) };

    // A good upload to reuse under wrong circumstances.
    let mut good = forge(&phone, &id);
    let base = good.heads();
    aidsync_tests::record_as_asked(
        &mut good,
        receipt("line-1", 1, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();
    let good_upload = upload_since(SHIPMENT, &mut good, &base);

    // Malformed bytes.
    let wire = client.sync(b"\xff\x00 this is not CBOR").await;
    assert_eq!(wire.status, StatusCode::BAD_REQUEST, "{:?}", reason(&wire));
    unchanged().await;

    // Not CBOR at all, by content type.
    let wire = client
        .post("application/json", br#"{"protocol":1}"#, false)
        .await;
    assert_eq!(wire.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(reason(&wire).contains("application/cbor"));

    // Unknown, missing and malformed tokens.
    let body = request(vec![good_upload.clone()]);
    for token in [Some("not-a-token"), None] {
        let wire = client
            .post_as(token, protocol::CONTENT_TYPE, &body, true)
            .await;
        assert_eq!(wire.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(!reason(&wire).is_empty());
    }
    unchanged().await;

    // A protocol this server does not speak.
    let wire = client
        .sync(&protocol::encode(&SyncRequest {
            protocol: PROTOCOL_VERSION + 1,
            cursor: 0,
            docs: vec![good_upload.clone()],
        }))
        .await;
    assert_eq!(wire.status, StatusCode::BAD_REQUEST);
    assert!(reason(&wire).contains("protocol"));

    // The same document twice in one request.
    let wire = client
        .sync(&request(vec![good_upload.clone(), good_upload.clone()]))
        .await;
    assert_eq!(wire.status, StatusCode::BAD_REQUEST);
    assert!(reason(&wire).contains("twice"));
    unchanged().await;

    // A document that does not exist, and one of another facility: the same answer.
    let mut elsewhere = good_upload.clone();
    elsewhere.id = shipment_id("no-such-shipment");
    let wire = client.sync(&request(vec![elsewhere])).await;
    assert_eq!(wire.status, StatusCode::NOT_FOUND);
    assert_eq!(upload_result(&wire), UploadResult::NotFound);
    let wire = post_raw(
        &world.api.http,
        &format!("{}/api/v1/sync", world.server.base),
        Some(stranger.token()),
        protocol::CONTENT_TYPE,
        &body,
        true,
    )
    .await
    .unwrap();
    assert_eq!(wire.status, StatusCode::NOT_FOUND);
    assert_eq!(upload_result(&wire), UploadResult::NotFound);
    unchanged().await;

    // Oversized, plainly and as a small gzip bomb.
    let wire = client
        .post(protocol::CONTENT_TYPE, &vec![0u8; MAX_BODY + 1], false)
        .await;
    assert_eq!(wire.status, StatusCode::PAYLOAD_TOO_LARGE);
    let wire = client
        .post(protocol::CONTENT_TYPE, &vec![0u8; 16 * MAX_BODY], true)
        .await;
    assert!(wire.traffic.bytes_up < MAX_BODY as u64 / 4);
    assert_eq!(wire.status, StatusCode::PAYLOAD_TOO_LARGE);
    unchanged().await;

    // Corrupt automerge bytes, in both encodings.
    for changes in [
        Changes::Chunks(vec![ByteBuf::from(b"not an automerge change".to_vec())]),
        Changes::Bundle(ByteBuf::from(b"not an automerge document".to_vec())),
    ] {
        let wire = client
            .sync(&request(vec![DocUpload {
                id: id.clone(),
                changes,
            }]))
            .await;
        assert_refused(&wire, RefusalCode::Corrupt, "");
    }
    unchanged().await;

    // A change that breaks the model: a receipt for a line that does not exist.
    let mut broken = forge(&phone, &id);
    let base = broken.heads();
    let forged = aidsync_tests::record_as_asked(
        &mut broken,
        receipt("line-1", 1, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();
    {
        let am = broken.automerge_mut();
        let (_, receipts) = am.get(automerge::ROOT, keys::RECEIPTS).unwrap().unwrap();
        let (_, obj) = am.get(&receipts, forged.id.as_str()).unwrap().unwrap();
        am.put(&obj, keys::LINE_ID, ScalarValue::Str("line-99".into()))
            .unwrap();
        am.commit();
    }
    let wire = client
        .sync(&request(vec![upload_since(SHIPMENT, &mut broken, &base)]))
        .await;
    assert_refused(&wire, RefusalCode::Invalid, "line-99");
    unchanged().await;

    // Her own, correctly signed change hanging a field the model does not
    // define on the document root: every phone would replicate it.
    let wire = client
        .upload_edit(&phone, |doc| {
            let am = doc.automerge_mut();
            am.put(automerge::ROOT, "payload", "x".repeat(100_000))
                .unwrap();
            am.commit();
        })
        .await;
    assert_refused(
        &wire,
        RefusalCode::Invalid,
        "document: unknown field \"payload\"",
    );
    unchanged().await;

    // A change signed by an actor that is not this device's.
    let mut impostor = forge(&phone, &id);
    let base = impostor.heads();
    impostor.set_actor(ActorId::random());
    aidsync_tests::record_as_asked(
        &mut impostor,
        receipt("line-1", 1, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();
    let wire = client
        .sync(&request(vec![upload_since(SHIPMENT, &mut impostor, &base)]))
        .await;
    assert_refused(&wire, RefusalCode::WrongActor, "");
    unchanged().await;

    // A change whose ancestor the server never got: nothing stored, and
    // the phone is told to send everything again.
    let mut gap = forge(&phone, &id);
    aidsync_tests::record_as_asked(
        &mut gap,
        receipt("line-1", 1, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();
    let middle = gap.heads();
    aidsync_tests::record_as_asked(
        &mut gap,
        receipt("line-2", 1, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();
    let wire = client
        .sync(&request(vec![upload_since(SHIPMENT, &mut gap, &middle)]))
        .await;
    assert_eq!(wire.status, StatusCode::OK);
    assert_eq!(upload_result(&wire), UploadResult::MissingDependencies);
    unchanged().await;

    // After all that, the honest phone still syncs.
    phone
        .record(&id, receipt("line-1", 1, Condition::Good, &["US-1"]))
        .await
        .unwrap();
    let report = phone.sync_settled().await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(phone.engine.pending(), 0);
    assert_eq!(receipts_by_user(&world.detail(SHIPMENT).await).len(), 1);
    world.server.stop().await.unwrap();
}

pub async fn one_bad_document_does_not_block_the_others(db: &TestDb) {
    let world = World::new(db).await;
    let mut phone = world.receiver("anna", FACILITY).await;
    phone.sync_settled().await.unwrap();

    let first = shipment_id(SHIPMENT);
    let second = shipment_id(SECOND_SHIPMENT);
    let mut bad = forge(&phone, &first);
    let bad_base = bad.heads();
    bad.set_actor(ActorId::random());
    aidsync_tests::record_as_asked(
        &mut bad,
        receipt("line-1", 1, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();
    let mut good = forge(&phone, &second);
    let good_base = good.heads();
    aidsync_tests::record_as_asked(
        &mut good,
        receipt("line-2", 2, Condition::Good, &[]),
        &recorder(&phone),
        now_ms(),
    )
    .unwrap();

    let before = Fingerprint::take(db.url()).await.unwrap();
    let wire = post_raw(
        &world.api.http,
        &format!("{}/api/v1/sync", world.server.base),
        Some(phone.token()),
        protocol::CONTENT_TYPE,
        &request(vec![
            upload_since(SHIPMENT, &mut bad, &bad_base),
            upload_since(SECOND_SHIPMENT, &mut good, &good_base),
        ]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(wire.status, StatusCode::FORBIDDEN);
    let response: SyncResponse = protocol::decode(&wire.body).unwrap();
    let result = |id: &ShipmentId| {
        response
            .docs
            .iter()
            .find(|d| &d.id == id)
            .and_then(|d| d.upload.clone())
    };
    assert!(matches!(
        result(&first),
        Some(UploadResult::Refused {
            code: RefusalCode::WrongActor,
            ..
        })
    ));
    assert_eq!(result(&second), Some(UploadResult::Accepted { new: 1 }));

    let after = Fingerprint::take(db.url()).await.unwrap();
    let changes_of = |f: &Fingerprint, doc: &str| {
        f.changes
            .iter()
            .filter(|c| c.starts_with(&format!("{doc}|")))
            .count()
    };
    assert_eq!(changes_of(&after, SHIPMENT), changes_of(&before, SHIPMENT));
    assert_eq!(
        changes_of(&after, SECOND_SHIPMENT),
        changes_of(&before, SECOND_SHIPMENT) + 1
    );
    assert!(receipts_by_user(&world.detail(SHIPMENT).await).is_empty());
    assert_eq!(
        receipts_by_user(&world.detail(SECOND_SHIPMENT).await),
        vec![("anna".to_string(), 2)]
    );
    world.server.stop().await.unwrap();
}

pub async fn bad_json_requests_are_refused(db: &TestDb) {
    let world = World::new(db).await;
    let token = Some(world.coordinator.token.as_str());
    let api = &world.api;
    let before = Fingerprint::take(db.url()).await.unwrap();

    let raw = api
        .http
        .post(format!("{}/api/v1/shipments", api.base))
        .header(
            "Authorization",
            format!("Bearer {}", world.coordinator.token),
        )
        .header("Content-Type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);

    let mut missing_field = shipment_json("jica-test-009", FACILITY);
    missing_field.as_object_mut().unwrap().remove("lines");
    let (status, body) = api
        .post(token, "/api/v1/shipments", &missing_field)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("lines"), "{body}");

    let mut zero = shipment_json("jica-test-009", FACILITY);
    zero["lines"][0]["quantity_expected"] = json!(0);
    let (status, body) = api.post(token, "/api/v1/shipments", &zero).await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let bad_id = shipment_json("bad id!", FACILITY);
    let (status, body) = api.post(token, "/api/v1/shipments", &bad_id).await.unwrap();
    assert!(status.is_client_error(), "{status} {body}");

    let (status, body) = api
        .post(
            token,
            "/api/v1/shipments",
            &shipment_json(SHIPMENT, FACILITY),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, _) = api
        .post(
            None,
            "/api/v1/shipments",
            &shipment_json("jica-test-010", FACILITY),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = api
        .get(token, "/api/v1/shipments/no-such-shipment")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api
        .get(token, "/api/v1/shipments?status=lost")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("awaiting"));
    let (status, _) = api.get(token, "/api/v1/nothing-here").await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A receiver cannot see another facility's shipment: it does not exist.
    let stranger = world.receiver("vira", OTHER_FACILITY).await;
    let (status, _) = api
        .get(
            Some(stranger.token()),
            &format!("/api/v1/shipments/{SHIPMENT}"),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = api
        .post(None, "/api/v1/login", &json!({ "user": "" }))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("password"),
        "{body}"
    );

    // Facilities must exist before anything names them.
    let nowhere = shipment_json("jica-test-011", "atlantis-central");
    let (status, body) = api
        .post(token, "/api/v1/shipments", &nowhere)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("atlantis-central"));
    let (status, body) = api
        .post(
            Some(&world.admin.token),
            "/api/v1/users",
            &json!({ "id": "ghost", "name": "Ghost", "role": "receiver",
                     "facility": "atlantis-central", "password": password("ghost") }),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("atlantis-central"));

    assert_eq!(Fingerprint::take(db.url()).await.unwrap(), before);
    world.server.stop().await.unwrap();
}

/// Nobody can record in someone else's name: not with an unknown or another
/// person's device's actor, not by claiming another user or device in a
/// receipt, and not beyond what their role allows. Each is a 403 (another
/// person's actor: skipped) and stores nothing; the one legitimate edit at
/// the end goes through.
pub async fn impersonation_is_refused(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut anna = world.receiver("anna", FACILITY).await;
    let mut bohdan = world.receiver("bohdan", FACILITY).await;
    anna.sync_settled().await.unwrap();
    bohdan.sync_settled().await.unwrap();
    let client = Client {
        world: &world,
        token: anna.token().to_owned(),
    };
    let before = Fingerprint::take(db.url()).await.unwrap();
    let unchanged = || async { assert_eq!(Fingerprint::take(db.url()).await.unwrap(), before) };
    let new_receipt = || receipt("line-1", 1, Condition::Good, &[]);
    let review = |id: &str, verdict| NewReview {
        id: ReviewId::parse(id).unwrap(),
        note: "checked against the waybill".into(),
        verdict: Some(verdict),
        resolves: Vec::new(),
    };

    // Anna uploads a change signed with an actor id no device has.
    let wire = client
        .upload_edit(&anna, |doc| {
            doc.set_actor(ActorId::random());
            aidsync_tests::record_as_asked(doc, new_receipt(), &recorder(&anna), now_ms()).unwrap();
        })
        .await;
    assert_refused(&wire, RefusalCode::WrongActor, "not a device of anna");
    unchanged().await;

    // Signed with Bohdan's actor id: what a phone carries of a colleague's
    // work (after a server restore it re-sends it all), so it is skipped
    // rather than refused, and never stored: only Bohdan's own phone may.
    let wire = client
        .upload_edit(&anna, |doc| {
            doc.set_actor(ActorId::try_from(bohdan.session.actor_id.as_str()).unwrap());
            aidsync_tests::record_as_asked(doc, new_receipt(), &recorder(&bohdan), now_ms())
                .unwrap();
        })
        .await;
    assert_eq!(wire.status, StatusCode::OK);
    assert_eq!(upload_result(&wire), UploadResult::Accepted { new: 0 });
    unchanged().await;

    // Her own actor, but a receipt claiming Bohdan recorded it.
    let wire = client
        .upload_edit(&anna, |doc| {
            aidsync_tests::record_as_asked(doc, new_receipt(), &recorder(&bohdan), now_ms())
                .unwrap();
        })
        .await;
    assert_refused(&wire, RefusalCode::Forbidden, "recorded by bohdan");
    unchanged().await;

    // Her name, but Bohdan's device.
    let wire = client
        .upload_edit(&anna, |doc| {
            let who = Recorder {
                device: recorder(&bohdan).device,
                ..recorder(&anna)
            };
            aidsync_tests::record_as_asked(doc, new_receipt(), &who, now_ms()).unwrap();
        })
        .await;
    assert_refused(&wire, RefusalCode::Forbidden, "not one of anna's devices");
    unchanged().await;

    // A receiver may not write reviews or edit the manifest.
    let wire = client
        .upload_edit(&anna, |doc| {
            let by = recorder(&anna).user;
            doc.add_review(review("rv-anna", Verdict::Approved), &by, now_ms())
                .unwrap();
        })
        .await;
    assert_refused(
        &wire,
        RefusalCode::Forbidden,
        "a receiver may not write reviews",
    );
    let wire = client
        .upload_edit(&anna, |doc| {
            doc.set_note("delivered early", now_ms()).unwrap()
        })
        .await;
    assert_refused(
        &wire,
        RefusalCode::Forbidden,
        "a receiver may not create shipments",
    );
    unchanged().await;

    // A coordinator may not record receipts: the phone refuses first, and
    // the server refuses a forged upload the same way.
    let mut olena = Phone::login(&world.api, COORDINATOR, &password(COORDINATOR))
        .await
        .unwrap();
    olena.sync_settled().await.unwrap();
    let err = olena.record(&id, new_receipt()).await.unwrap_err();
    assert!(
        err.to_string().contains("a coordinator may not record"),
        "{err}"
    );
    let olena_client = Client {
        world: &world,
        token: olena.token().to_owned(),
    };
    let wire = olena_client
        .upload_edit(&olena, |doc| {
            aidsync_tests::record_as_asked(doc, new_receipt(), &recorder(&olena), now_ms())
                .unwrap();
        })
        .await;
    assert_refused(
        &wire,
        RefusalCode::Forbidden,
        "a coordinator may not record",
    );
    unchanged().await;

    // What a coordinator may do — review — goes through and reaches Anna.
    let wire = olena_client
        .upload_edit(&olena, |doc| {
            let by = recorder(&olena).user;
            doc.add_review(review("rv-olena", Verdict::HasIssues), &by, now_ms())
                .unwrap();
        })
        .await;
    assert_eq!(wire.status, StatusCode::OK);
    assert_eq!(upload_result(&wire), UploadResult::Accepted { new: 1 });
    anna.sync_settled().await.unwrap();
    let reviews = anna.engine.shipment(&id).unwrap().reviews;
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews.values().next().unwrap().by.as_str(), COORDINATOR);
    world.server.stop().await.unwrap();
}
