//! Deliveries, receipt stages and reasons (schema 3), and the
//! goods-received note derived from them. Each rule is checked where the
//! phone records and where the server merges; the rules that depend on
//! what the recorder saw (short, over) only where it records.

#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType, ROOT, ReadDoc, ScalarValue};

use aidsync_shared::grn::{GrnError, goods_received_note};
use aidsync_shared::ids::{
    AttachmentId, DeliveryId, DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId,
};
use aidsync_shared::model::{
    Condition, FileKind, FileRef, Line, ModelError, NewAttachment, NewDelivery, NewReceipt,
    NewShipment, Reason, Recorder, SCHEMA_VERSION, Seal, ShipmentDoc, Signer, Stage, read_shipment,
};
use aidsync_shared::roles::{Forbidden, Role};
use aidsync_shared::sync::server::{Refusal, Uploader, merge_upload};

const T0: i64 = 1_790_000_000_000;

fn who(user: &str) -> Recorder {
    Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    }
}

fn shipment() -> ShipmentDoc {
    let new = NewShipment {
        id: ShipmentId::parse("jica-grn-1").unwrap(),
        donor: "JICA".into(),
        programme: "Medical equipment 2026".into(),
        reference: "JICA-UA-2026-014".into(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: Some("2026-12-01".into()),
        note: String::new(),
        lines: vec![
            Line {
                id: LineId::parse("us").unwrap(),
                item: "Портативний УЗД-апарат".into(),
                category: "imaging".into(),
                unit: "unit".into(),
                quantity_expected: 4,
                serials_expected: vec!["US-1".into(), "US-2".into(), "US-3".into(), "US-4".into()],
                accessories: Vec::new(),
                unit_value: None,
            },
            Line {
                id: LineId::parse("scope").unwrap(),
                item: "Endoscope tower".into(),
                category: "endoscopy".into(),
                unit: "set".into(),
                quantity_expected: 2,
                serials_expected: Vec::new(),
                accessories: Vec::new(),
                unit_value: None,
            },
        ],
    };
    ShipmentDoc::create(
        &new,
        &UserId::parse("olena").unwrap(),
        ActorId::random(),
        T0,
    )
    .unwrap()
}

fn receipt(id: &str, line: &str, quantity: u64) -> NewReceipt {
    NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse(line).unwrap(),
        quantity,
        condition: Condition::Good,
        serials: Vec::new(),
        note: String::new(),
        voids: None,
        stage: None,
        reason: None,
        delivery_id: None,
    }
}

fn delivery(id: &str) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::parse(id).unwrap(),
        waybill: "ТТН-0042".into(),
        transporter: "Nova Poshta Cargo".into(),
        vehicle: "AX 1234 KC".into(),
        seal: Seal::Intact,
        seal_number: "S-77001".into(),
        packages_expected: Some(6),
        packages_received: Some(6),
        arrived_at: T0 + 100,
        note: String::new(),
        replaces: None,
    }
}

fn reason_required(result: Result<impl std::fmt::Debug, ModelError>) -> &'static str {
    match result.unwrap_err() {
        ModelError::ReasonRequired { why, .. } => why,
        other => panic!("expected ReasonRequired, got {other}"),
    }
}

#[test]
fn counts_that_differ_from_the_manifest_need_a_reason_when_recorded() {
    let mut doc = shipment();
    let anna = who("anna");
    // Short: 2 of 4 outstanding.
    let why = reason_required(doc.record_receipt(receipt("r1", "us", 2), &anna, T0 + 1));
    assert!(why.contains("short"), "{why}");
    // Over: 5 of 4.
    let why = reason_required(doc.record_receipt(receipt("r1", "us", 5), &anna, T0 + 1));
    assert!(why.contains("over"), "{why}");
    // Damaged, even when the count is right.
    let mut damaged = receipt("r1", "us", 4);
    damaged.condition = Condition::Damaged;
    let why = reason_required(doc.record_receipt(damaged.clone(), &anna, T0 + 1));
    assert!(why.contains("good order"), "{why}");
    // Rejected, even when in good order.
    let mut rejected = receipt("r1", "us", 4);
    rejected.stage = Some(Stage::Rejected);
    let why = reason_required(doc.record_receipt(rejected, &anna, T0 + 1));
    assert!(why.contains("rejected"), "{why}");
    // "Other" says what in the note.
    let mut other = receipt("r1", "us", 2);
    other.reason = Some(Reason::Other);
    let err = doc
        .record_receipt(other.clone(), &anna, T0 + 1)
        .unwrap_err();
    assert!(err.to_string().contains("say what in the note"), "{err}");
    assert_eq!(
        doc.read().unwrap().receipts.len(),
        0,
        "nothing refused was saved"
    );

    // With reasons, all of it records; the stage defaults to provisional.
    other.note = "two boxes held at customs".into();
    let r = doc.record_receipt(other, &anna, T0 + 1).unwrap();
    assert_eq!(
        (r.stage, r.reason),
        (Some(Stage::Provisional), Some(Reason::Other))
    );
    damaged.id = ReceiptId::parse("r2").unwrap();
    damaged.quantity = 2;
    damaged.reason = Some(Reason::DamagedInTransit);
    doc.record_receipt(damaged, &anna, T0 + 2).unwrap();
    // Exactly what is outstanding, in good order: no reason asked.
    doc.record_receipt(receipt("r3", "scope", 2), &anna, T0 + 3)
        .unwrap();
    assert_eq!(doc.read().unwrap().receipts.len(), 3);
}

#[test]
fn an_inspection_replaces_the_count_at_the_truck_without_a_new_reason() {
    let mut doc = shipment();
    let anna = who("anna");
    doc.record_receipt(receipt("count", "scope", 2), &anna, T0 + 1)
        .unwrap();
    // Accepting both: the provisional count no longer counts, so 2 are
    // outstanding again and 2 need no reason.
    let mut accept = receipt("accept", "scope", 2);
    accept.voids = Some(ReceiptId::parse("count").unwrap());
    accept.stage = Some(Stage::Accepted);
    doc.record_receipt(accept, &anna, T0 + 2).unwrap();
    let s = doc.read().unwrap();
    let active: Vec<_> = s
        .active_receipts()
        .map(|r| (r.id.as_str(), r.stage()))
        .collect();
    assert_eq!(active, [("accept", Stage::Accepted)]);
    assert_eq!(s.outstanding_on(&LineId::parse("scope").unwrap(), None), 0);
}

/// The server refuses a staged receipt that breaks a rule of its own,
/// whatever the phone skipped; receipts from before stages are not held to
/// reasons and keep reading.
#[test]
fn the_server_refuses_a_staged_receipt_without_its_reason_but_reads_old_ones() {
    let server = shipment();
    let actor = ActorId::random();
    let mut rogue = server.clone();
    rogue.set_actor(actor.clone());
    let am = rogue.automerge_mut();
    let (_, receipts) = am.get(ROOT, "receipts").unwrap().unwrap();
    let r = am.put_object(&receipts, "forged", ObjType::Map).unwrap();
    am.put(&r, "line_id", "us").unwrap();
    am.put(&r, "quantity", 1_u64).unwrap();
    am.put(&r, "condition", "damaged").unwrap();
    am.put_object(&r, "serials", ObjType::List).unwrap();
    am.put(&r, "note", "").unwrap();
    am.put(&r, "recorded_by", "anna").unwrap();
    am.put(&r, "device_id", "anna-phone").unwrap();
    am.put(&r, "recorded_at", T0 + 1).unwrap();
    am.put(&r, "stage", "rejected").unwrap();
    am.commit();
    let uploader = Uploader::single_device(&who("anna"), Role::Receiver, actor);
    let changes = rogue.automerge_mut().get_changes(&server.clone().heads());
    let err = merge_upload(&server, changes, &uploader).unwrap_err();
    assert!(
        matches!(&err, Refusal::Invalid(ModelError::ReasonRequired { .. })),
        "{err}"
    );

    // The same receipt with no stage is one from before reasons: valid.
    let am = rogue.automerge_mut();
    let (_, receipts) = am.get(ROOT, "receipts").unwrap().unwrap();
    let (_, r) = am.get(&receipts, "forged").unwrap().unwrap();
    am.delete(&r, "stage").unwrap();
    am.commit();
    let s = read_shipment(rogue.automerge()).unwrap();
    assert_eq!(s.receipts.values().next().unwrap().stage, None);
}

/// A schema 2 document (no deliveries) reads, refuses deliveries and
/// stages, and keeps a chosen reason in the receipt's note until the
/// server upgrades it; then everything records.
#[test]
fn schema_2_documents_keep_the_reason_in_the_note_until_upgraded() {
    let mut server = shipment();
    let am = server.automerge_mut();
    am.delete(ROOT, "deliveries").unwrap();
    am.delete(ROOT, "unit_events").unwrap();
    am.put(ROOT, "schema", ScalarValue::Uint(2)).unwrap();
    am.commit();
    assert_eq!(server.read().unwrap().schema, 2);

    let mut phone = server.clone();
    phone.set_actor(ActorId::random());
    let anna = who("anna");
    let err = phone
        .record_delivery(delivery("d1"), &anna, T0 + 1)
        .unwrap_err();
    assert_eq!(err, ModelError::NoDeliveries { schema: 2 });
    let mut short = receipt("r1", "us", 1);
    short.reason = Some(Reason::Short);
    short.note = "one box missing".into();
    let r = phone.record_receipt(short, &anna, T0 + 2).unwrap();
    assert_eq!((r.stage, r.reason), (None, None));
    assert_eq!(r.note, "[short] one box missing");
    // A stage or reason key in a schema 2 document is unknown there.
    let am = phone.automerge_mut();
    let (_, receipts) = am.get(ROOT, "receipts").unwrap().unwrap();
    let (_, obj) = am.get(&receipts, "r1").unwrap().unwrap();
    let mut forged = phone.clone();
    forged
        .automerge_mut()
        .put(&obj, "stage", "accepted")
        .unwrap();
    let err = read_shipment(forged.automerge()).unwrap_err();
    assert!(matches!(err, ModelError::UnknownField { .. }), "{err}");

    // The server upgrades; old receipts keep reading, new ones are staged.
    assert!(server.upgrade(T0 + 3).unwrap());
    assert_eq!(server.read().unwrap().schema, SCHEMA_VERSION);
    let mut phone = server.clone();
    phone.set_actor(ActorId::random());
    phone
        .record_delivery(delivery("d1"), &anna, T0 + 4)
        .unwrap();
    let mut r = receipt("r2", "us", 4);
    r.delivery_id = Some(DeliveryId::parse("d1").unwrap());
    let r = phone.record_receipt(r, &anna, T0 + 5).unwrap();
    assert_eq!(r.stage, Some(Stage::Provisional));
}

#[test]
fn deliveries_are_events_a_correction_replaces() {
    let mut doc = shipment();
    let anna = who("anna");
    doc.record_delivery(delivery("d1"), &anna, T0 + 1).unwrap();
    let err = doc
        .record_delivery(delivery("d1"), &anna, T0 + 2)
        .unwrap_err();
    assert!(matches!(err, ModelError::AlreadyExists { .. }), "{err}");
    let mut fix = delivery("d2");
    fix.replaces = Some(DeliveryId::parse("d0").unwrap());
    let err = doc.record_delivery(fix.clone(), &anna, T0 + 2).unwrap_err();
    assert!(
        matches!(err, ModelError::ReplacesUnknownDelivery { .. }),
        "{err}"
    );
    fix.replaces = Some(DeliveryId::parse("d1").unwrap());
    fix.seal = Seal::Broken;
    doc.record_delivery(fix, &anna, T0 + 2).unwrap();
    let s = doc.read().unwrap();
    let active: Vec<_> = s.active_deliveries().map(|d| d.id.as_str()).collect();
    assert_eq!(active, ["d2"]);

    // A receipt may name only a delivery that exists.
    let mut r = receipt("r1", "scope", 2);
    r.delivery_id = Some(DeliveryId::parse("nope").unwrap());
    let err = doc.record_receipt(r, &anna, T0 + 3).unwrap_err();
    assert!(matches!(err, ModelError::UnknownDelivery { .. }), "{err}");
}

/// Two receivers record deliveries and receipts offline; both merge, and
/// the server takes each only in its recorder's own name.
#[test]
fn deliveries_from_two_phones_merge_and_are_signed_by_their_recorder() {
    let server = shipment();
    let upload = |user: &str, recorded_as: &str, id: &str| {
        let actor = ActorId::random();
        let mut phone = server.clone();
        phone.set_actor(actor.clone());
        phone
            .record_delivery(delivery(id), &who(recorded_as), T0 + 1)
            .unwrap();
        let uploader = Uploader::single_device(&who(user), Role::Receiver, actor);
        let changes = phone.automerge_mut().get_changes(&server.clone().heads());
        merge_upload(&server, changes, &uploader)
    };
    let err = upload("anna", "bohdan", "d1").unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::Forbidden(Forbidden::DeliveryOfAnotherUser { .. })
        ),
        "{err}"
    );
    let mut a = server.clone();
    a.set_actor(ActorId::random());
    a.record_delivery(delivery("d-anna"), &who("anna"), T0 + 1)
        .unwrap();
    let mut b = server.clone();
    b.set_actor(ActorId::random());
    b.record_delivery(delivery("d-bohdan"), &who("bohdan"), T0 + 1)
        .unwrap();
    a.automerge_mut().merge(b.automerge_mut()).unwrap();
    assert_eq!(a.read().unwrap().deliveries.len(), 2);
}

fn signature(id: &str) -> NewAttachment {
    NewAttachment {
        id: AttachmentId::parse(id).unwrap(),
        file_kind: FileKind::Signature,
        receipt_id: None,
        file: FileRef {
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            media_type: "image/png".into(),
            size: 3_000,
            width: Some(600),
            height: Some(200),
        },
        signer: Some(Signer {
            name: "Іван Петренко".into(),
            role: "водій / driver".into(),
        }),
        note: String::new(),
        delivery_id: None,
    }
}

#[test]
fn the_goods_received_note_counts_one_delivery_or_the_whole_shipment() {
    let mut doc = shipment();
    let anna = who("anna");
    doc.record_delivery(delivery("d1"), &anna, T0 + 1).unwrap();
    let mut second = delivery("d2");
    second.arrived_at = T0 + 5_000;
    doc.record_delivery(second, &anna, T0 + 2).unwrap();
    let d = |id: &str| Some(DeliveryId::parse(id).unwrap());

    // Truck 1: 3 ultrasound units, one damaged and rejected.
    let mut r = receipt("r1", "us", 2);
    r.serials = vec!["US-1".into(), "US-2".into()];
    r.stage = Some(Stage::Accepted);
    r.reason = Some(Reason::Short);
    r.delivery_id = d("d1");
    doc.record_receipt(r, &anna, T0 + 3).unwrap();
    let mut r = receipt("r2", "us", 1);
    r.condition = Condition::Damaged;
    r.stage = Some(Stage::Rejected);
    r.reason = Some(Reason::DamagedInTransit);
    r.note = "screen cracked".into();
    r.serials = vec!["US-3".into()];
    r.delivery_id = d("d1");
    doc.record_receipt(r, &anna, T0 + 4).unwrap();
    // Truck 2: both endoscope towers, counted, not yet inspected.
    let mut r = receipt("r3", "scope", 2);
    r.delivery_id = d("d2");
    doc.record_receipt(r, &anna, T0 + 5).unwrap();
    // One signature for the shipment as a whole, one at each truck.
    doc.record_attachment(signature("sig"), &anna, T0 + 6)
        .unwrap();
    for (id, delivery) in [("sig-d1", "d1"), ("sig-d2", "d2")] {
        let mut signed = signature(id);
        signed.delivery_id = d(delivery);
        doc.record_attachment(signed, &anna, T0 + 7).unwrap();
    }
    let mut nowhere = signature("sig-nowhere");
    nowhere.delivery_id = d("d9");
    let refused = doc.record_attachment(nowhere, &anna, T0 + 8);
    assert!(
        matches!(&refused, Err(ModelError::Invalid { reason, .. }) if reason.contains("d9 does not exist")),
        "{refused:?}"
    );
    let s = doc.read().unwrap();

    let note = goods_received_note(&s, d("d1").as_ref()).unwrap();
    assert_eq!(note.delivery.as_ref().map(|d| d.id.as_str()), Some("d1"));
    assert_eq!(note.receipts, 2);
    let us = &note.lines[1];
    assert_eq!(us.line.id.as_str(), "us");
    assert_eq!(
        (us.received, us.accepted, us.rejected, us.provisional),
        (3, 2, 1, 0)
    );
    assert_eq!(us.serials, ["US-1", "US-2", "US-3"]);
    let reasons: Vec<_> = us
        .exceptions
        .iter()
        .map(|e| (e.receipt.as_str(), e.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("r1", Some(Reason::Short)),
            ("r2", Some(Reason::DamagedInTransit))
        ]
    );
    let scope = &note.lines[0];
    assert_eq!(
        scope.received, 0,
        "the second truck is not on the first's note"
    );
    let signed: Vec<&str> = note.signatures.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        signed,
        ["sig", "sig-d1"],
        "not the second truck's signature"
    );

    let whole = goods_received_note(&s, None).unwrap();
    assert_eq!(whole.receipts, 3);
    assert_eq!(whole.signatures.len(), 3);
    assert_eq!(whole.deliveries.len(), 2);
    assert_eq!(
        (whole.lines[0].received, whole.lines[0].provisional),
        (2, 2)
    );

    let err = goods_received_note(&s, d("nope").as_ref()).unwrap_err();
    assert_eq!(
        err,
        GrnError::UnknownDelivery(DeliveryId::parse("nope").unwrap())
    );
}
