//! Attachments in the model: a photo, document or signature is a reference
//! (hash, type, size) recorded as an immutable event; removing one is an
//! event too. Schema 1 documents still read and are upgraded by the server
//! only. Each rule is checked on the phone (recording) and on the server
//! (merging an upload).

#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, ROOT, ReadDoc, ScalarValue};

use aidsync_shared::ids::{
    AttachmentId, DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId,
};
use aidsync_shared::model::{
    AttachmentEvent, Condition, FileKind, FileRef, Line, ModelError, NewAttachment, NewReceipt,
    NewShipment, Reason, Recorder, SCHEMA_VERSION, ShipmentDoc, Signer,
};
use aidsync_shared::roles::{Forbidden, Role};
use aidsync_shared::sync::server::{Refusal, Uploader, merge_upload};

const T0: i64 = 1_790_000_000_000;
const PHOTO_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn who(user: &str) -> Recorder {
    Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    }
}

fn shipment() -> ShipmentDoc {
    let mut doc = empty_shipment();
    record_r1(&mut doc);
    doc
}

fn empty_shipment() -> ShipmentDoc {
    let new = NewShipment {
        id: ShipmentId::parse("jica-att-1").unwrap(),
        donor: "JICA".into(),
        programme: String::new(),
        reference: String::new(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: None,
        note: String::new(),
        lines: vec![Line {
            id: LineId::parse("us").unwrap(),
            item: "Portable ultrasound".into(),
            category: "imaging".into(),
            unit: "unit".into(),
            quantity_expected: 4,
            serials_expected: Vec::new(),
            accessories: Vec::new(),
            unit_value: None,
        }],
    };
    ShipmentDoc::create(
        &new,
        &UserId::parse("olena").unwrap(),
        ActorId::random(),
        T0,
    )
    .unwrap()
}

/// A receipt of four damaged ultrasound units on `doc`.
fn record_r1(doc: &mut ShipmentDoc) {
    doc.record_receipt(
        NewReceipt {
            id: ReceiptId::parse("r1").unwrap(),
            line_id: LineId::parse("us").unwrap(),
            quantity: 4,
            condition: Condition::Damaged,
            serials: Vec::new(),
            note: String::new(),
            voids: None,
            stage: None,
            reason: Some(Reason::DamagedInTransit),
            delivery_id: None,
        },
        &who("anna"),
        T0 + 1,
    )
    .unwrap();
}

fn photo(id: &str, receipt: Option<&str>) -> NewAttachment {
    NewAttachment {
        id: AttachmentId::parse(id).unwrap(),
        file_kind: FileKind::Photo,
        receipt_id: receipt.map(|r| ReceiptId::parse(r).unwrap()),
        file: FileRef {
            sha256: PHOTO_HASH.into(),
            media_type: "image/jpeg".into(),
            size: 183_204,
            width: Some(1600),
            height: Some(1200),
        },
        signer: None,
        note: "crushed corner of crate 2".into(),
        delivery_id: None,
    }
}

#[test]
fn a_photo_on_a_receipt_reads_back_and_a_removal_hides_it() {
    let mut doc = shipment();
    let anna = who("anna");
    doc.record_attachment(photo("a1", Some("r1")), &anna, T0 + 2)
        .unwrap();
    let s = doc.read().unwrap();
    assert_eq!(s.schema, SCHEMA_VERSION);
    let a = &s.attachments[&AttachmentId::parse("a1").unwrap()];
    assert_eq!(a.recorded_by.as_str(), "anna");
    assert_eq!(a.file().unwrap().sha256, PHOTO_HASH);
    assert!(matches!(
        &a.event,
        AttachmentEvent::File { receipt_id: Some(r), file_kind: FileKind::Photo, .. } if r.as_str() == "r1"
    ));
    assert_eq!(s.active_attachments().count(), 1);

    doc.remove_attachment(
        AttachmentId::parse("a2").unwrap(),
        AttachmentId::parse("a1").unwrap(),
        "wrong crate",
        &anna,
        T0 + 3,
    )
    .unwrap();
    let s = doc.read().unwrap();
    assert_eq!(
        s.attachments.len(),
        2,
        "the removal is recorded, the photo kept"
    );
    assert_eq!(s.active_attachments().count(), 0);

    // A removal removes a file, not another removal or nothing.
    let err = doc
        .remove_attachment(
            AttachmentId::parse("a3").unwrap(),
            AttachmentId::parse("a2").unwrap(),
            "",
            &anna,
            T0 + 4,
        )
        .unwrap_err();
    assert!(
        matches!(err, ModelError::RemovesUnknownAttachment { .. }),
        "{err}"
    );
}

#[test]
fn the_model_refuses_bad_references_before_anything_is_saved() {
    let mut doc = shipment();
    let anna = who("anna");
    let heads = doc.heads();
    let refused = |doc: &mut ShipmentDoc, new: NewAttachment| {
        let err = doc.record_attachment(new, &anna, T0 + 2).unwrap_err();
        err.to_string()
    };
    let mut bad = photo("a1", Some("r9"));
    assert!(refused(&mut doc, bad.clone()).contains("receipt r9, which does not exist"));
    bad = photo("a1", None);
    bad.file.sha256 = "ABC".into();
    assert!(refused(&mut doc, bad.clone()).contains("sha256"));
    bad = photo("a1", None);
    bad.file.media_type = "text/html".into();
    assert!(refused(&mut doc, bad.clone()).contains("not an accepted file type"));
    bad = photo("a1", None);
    bad.file.size = 0;
    assert!(refused(&mut doc, bad.clone()).contains("size"));
    bad = photo("a1", None);
    bad.file.height = None;
    assert!(refused(&mut doc, bad.clone()).contains("width and height go together"));
    bad = photo("a1", None);
    bad.file_kind = FileKind::Signature;
    assert!(refused(&mut doc, bad.clone()).contains("signer_name: missing"));
    bad.signer = Some(Signer {
        name: "  ".into(),
        role: "driver".into(),
    });
    assert!(refused(&mut doc, bad.clone()).contains("must not be empty"));
    bad = photo("a1", None);
    bad.signer = Some(Signer {
        name: "Ivan".into(),
        role: String::new(),
    });
    assert!(refused(&mut doc, bad).contains("only a signature has a signer"));
    assert_eq!(doc.heads(), heads, "nothing was written");

    let mut signature = photo("a1", None);
    signature.file_kind = FileKind::Signature;
    signature.file.media_type = "image/png".into();
    signature.signer = Some(Signer {
        name: "Ivan Petrenko".into(),
        role: "driver".into(),
    });
    doc.record_attachment(signature, &anna, T0 + 2).unwrap();
    let err = doc
        .record_attachment(photo("a1", None), &anna, T0 + 3)
        .unwrap_err();
    assert!(matches!(err, ModelError::AlreadyExists { .. }), "{err}");
}

/// A removal carrying a file's keys, or a photo carrying a signer, is
/// refused like an unknown field: each kind has its own keys.
#[test]
fn keys_of_another_kind_are_refused() {
    let mut doc = shipment();
    doc.record_attachment(photo("a1", None), &who("anna"), T0 + 2)
        .unwrap();
    let am = doc.automerge_mut();
    let (_, map) = am.get(ROOT, "attachments").unwrap().unwrap();
    let (_, a1) = am.get(&map, "a1").unwrap().unwrap();
    am.put(&a1, "signer_name", "Ivan").unwrap();
    am.commit();
    assert_eq!(
        doc.read().unwrap_err(),
        ModelError::UnknownField {
            path: "attachments/a1".into(),
            key: "signer_name".into()
        }
    );
}

/// A document written before attachments existed reads (with none); a
/// phone cannot attach to it, nor upgrade it: only the server does, once.
#[test]
fn schema_1_documents_read_and_only_the_server_upgrades_them() {
    let mut server = empty_shipment();
    let am = server.automerge_mut();
    am.delete(ROOT, "attachments").unwrap();
    am.delete(ROOT, "deliveries").unwrap();
    am.delete(ROOT, "unit_events").unwrap();
    am.put(ROOT, "schema", ScalarValue::Uint(1)).unwrap();
    am.commit();
    record_r1(&mut server);
    let s = server.read().unwrap();
    assert_eq!((s.schema, s.attachments.len()), (1, 0));

    let mut phone = server.clone();
    phone.set_actor(ActorId::random());
    let err = phone
        .record_attachment(photo("a1", Some("r1")), &who("anna"), T0 + 2)
        .unwrap_err();
    assert_eq!(err, ModelError::NoAttachments { schema: 1 });

    // A phone that upgrades the document itself is refused.
    let actor = ActorId::random();
    let mut rogue = server.clone();
    rogue.set_actor(actor.clone());
    assert!(rogue.upgrade(T0 + 2).unwrap());
    let uploader = Uploader::single_device(&who("anna"), Role::Receiver, actor);
    let changes = rogue.automerge_mut().get_changes(&server.heads());
    let err = merge_upload(&server, changes, &uploader).unwrap_err();
    assert_eq!(
        err,
        Refusal::Forbidden(Forbidden::SchemaChange {
            from: 1,
            to: SCHEMA_VERSION
        })
    );

    // The server's upgrade: one change, then the phone attaches.
    assert!(server.upgrade(T0 + 3).unwrap());
    assert!(
        !server.upgrade(T0 + 4).unwrap(),
        "upgrading twice does nothing"
    );
    assert_eq!(server.read().unwrap().schema, SCHEMA_VERSION);
    let actor = ActorId::random();
    let mut phone = server.clone();
    phone.set_actor(actor.clone());
    phone
        .record_attachment(photo("a1", Some("r1")), &who("anna"), T0 + 5)
        .unwrap();
    let uploader = Uploader::single_device(&who("anna"), Role::Receiver, actor);
    let changes = phone.automerge_mut().get_changes(&server.heads());
    let merged = merge_upload(&server, changes, &uploader).unwrap();
    assert_eq!(merged.shipment.active_attachments().count(), 1);
}

/// Attaching is a receiver's right, in their own name and from their own
/// device, like recording a receipt.
#[test]
fn only_the_recorder_in_their_own_name_may_attach() {
    let mut server = shipment();
    let heads = server.heads();
    let upload = |user: &str, role: Role, recorded_as: &str| {
        let actor = ActorId::random();
        let mut phone = server.clone();
        phone.set_actor(actor.clone());
        phone
            .record_attachment(photo("a1", None), &who(recorded_as), T0 + 2)
            .unwrap();
        let uploader = Uploader::single_device(&who(user), role, actor);
        let changes = phone.automerge_mut().get_changes(&heads);
        merge_upload(&server, changes, &uploader).map(|m| m.shipment)
    };
    assert!(upload("anna", Role::Receiver, "anna").is_ok());
    let err = upload("olena", Role::Coordinator, "olena").unwrap_err();
    assert!(
        err.to_string()
            .contains("may not record or void receipts, or attach files"),
        "{err}"
    );
    let err = upload("anna", Role::Receiver, "bohdan").unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::Forbidden(Forbidden::AttachmentOfAnotherUser { .. })
        ),
        "{err}"
    );
}
