//! The server checks an upload by reading only what its changes touched
//! (`read_shipment_after`); the whole-document read is the oracle. Random
//! histories of receipts (with stages and reasons), voids, reviews,
//! deliveries, attachments and their removals, units' steps after receipt
//! (concurrent ones in conflict), header and line edits,
//! documents of the older schemas, concurrent edits on several replicas, and forged changes that break the model or a
//! role's limits go through both, and every upload must get the same
//! verdict: the same document model when accepted, the same reason when
//! refused.

#![allow(clippy::unwrap_used)]

use automerge::{
    ActorId, AutoCommit, Change, ObjType, ROOT, ReadDoc, ScalarValue, transaction::Transactable,
};
use proptest::prelude::*;

use aidsync_shared::ids::{
    AttachmentId, DeliveryId, DeviceId, FacilityId, LineId, ReceiptId, ReviewId, ShipmentId,
    UnitEventId, UserId,
};
use aidsync_shared::model::{
    Condition, FileKind, FileRef, Line, NewAttachment, NewDelivery, NewReceipt, NewReview,
    NewShipment, NewUnitEvent, Reason, Recorder, Seal, Shipment, ShipmentDoc, Signer, Stage,
    TestResult, UnitStatus, UnitStep, Verdict, read_shipment,
};
use aidsync_shared::roles::{Role, check_edit};
use aidsync_shared::sync::lineage::{LineageIndex, check_lineage};
use aidsync_shared::sync::server::{Refusal, Uploader, merge_into};

const T0: i64 = 1_790_000_000_000;

/// Something a replica does.
#[derive(Debug, Clone)]
enum Step {
    /// A receipt through the model (refused by it when invalid).
    Receipt {
        line: u8,
        quantity: u8,
        condition: u8,
        serial: Option<u8>,
        void: Option<u8>,
        /// None, provisional, accepted, rejected.
        stage: u8,
        /// One of the reasons, or (past the last) none.
        reason: u8,
        delivery: Option<u8>,
    },
    /// A delivery through the model, perhaps correcting an earlier one.
    Delivery {
        seal: u8,
        replaces: Option<u8>,
    },
    Review {
        verdict: u8,
        resolves: Vec<u8>,
    },
    /// An attached file through the model: on a receipt or the shipment,
    /// a photo, document or signature.
    Attach {
        receipt: Option<u8>,
        kind: u8,
    },
    /// The removal of an attached file through the model.
    RemoveAttachment(u8),
    /// One step of a unit's life through the model: which unit (line and
    /// serial, perhaps one no line has), which step, and a variant of it
    /// (a failed test without a note, a hand-over…).
    Unit {
        line: u8,
        serial: u8,
        step: u8,
        variant: u8,
    },
    Note(u8),
    ExpectedOn(Option<u8>),
    AddLine(u8),
    /// An edit made with automerge directly, as a forged upload would.
    Raw(Raw),
    /// Take in the server's state.
    Pull,
    /// Send everything the replica has.
    Upload,
}

#[derive(Debug, Clone)]
enum Raw {
    UnknownRootField,
    UnknownReceiptField(u8),
    ReceiptNoteNotText(u8),
    DeleteReceipt(u8),
    OverwriteQuantity(u8),
    HeaderDonor(u8),
    DeleteLine(u8),
    ReplaceReceiptsMap,
    PushSerial(u8),
    LineItem(u8, u8),
    ReceiptMissingFields(u8),
    ReviewNote(u8),
    LineQuantity(u8, u8),
    /// A receipt rewritten to name a line that does not exist.
    ReceiptLine(u8),
    /// A receipt rewritten to void itself, a receipt that does not exist,
    /// or another one.
    ReceiptVoids(u8, u8),
    /// An attachment rewritten to name a receipt that does not exist.
    AttachmentReceipt(u8),
    /// A key of another kind on an attachment (a removal's target on a
    /// photo, a signer on a document).
    AttachmentForeignKey(u8),
    /// A removal rewritten to remove nothing that exists.
    RemovalTarget(u8),
    /// An attachment rewritten to name a delivery that does not exist.
    AttachmentDelivery(u8),
    DeleteAttachment(u8),
    ReplaceAttachmentsMap,
    /// A receipt rewritten to name a delivery that does not exist.
    ReceiptDelivery(u8),
    /// A receipt rewritten to another stage, or one that does not exist.
    ReceiptStage(u8),
    /// A receipt's reason taken away.
    DeleteReason(u8),
    /// A new receipt, staged, of damaged units, without a reason: what a
    /// phone that skipped the model's rules would send.
    StagedReceiptWithoutReason(u8),
    DeleteDelivery(u8),
    /// A delivery's seal rewritten to a state that does not exist.
    DeliverySeal(u8),
    /// A phone upgrading (or downgrading) the document's schema itself.
    Schema(u8),
    /// A unit event rewritten to a serial no line has.
    UnitSerial(u8),
    /// A key of another step on a unit event.
    UnitForeignKey(u8),
    /// A unit event rewritten to supersede itself, nothing, or another.
    UnitSupersedes(u8, u8),
    /// A unit event's status rewritten to one that does not exist.
    UnitStatusWord(u8),
    DeleteUnitEvent(u8),
    ReplaceUnitEventsMap,
    /// A line's accessories list given an item that is not text.
    LineAccessoryNotText(u8),
}

fn raw() -> impl Strategy<Value = Raw> {
    prop_oneof![
        Just(Raw::UnknownRootField),
        any::<u8>().prop_map(Raw::UnknownReceiptField),
        any::<u8>().prop_map(Raw::ReceiptNoteNotText),
        any::<u8>().prop_map(Raw::DeleteReceipt),
        any::<u8>().prop_map(Raw::OverwriteQuantity),
        any::<u8>().prop_map(Raw::HeaderDonor),
        any::<u8>().prop_map(Raw::DeleteLine),
        Just(Raw::ReplaceReceiptsMap),
        any::<u8>().prop_map(Raw::PushSerial),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Raw::LineItem(a, b)),
        any::<u8>().prop_map(Raw::ReceiptMissingFields),
        any::<u8>().prop_map(Raw::ReviewNote),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Raw::LineQuantity(a, b)),
        any::<u8>().prop_map(Raw::ReceiptLine),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Raw::ReceiptVoids(a, b)),
        any::<u8>().prop_map(Raw::AttachmentReceipt),
        any::<u8>().prop_map(Raw::AttachmentForeignKey),
        any::<u8>().prop_map(Raw::RemovalTarget),
        any::<u8>().prop_map(Raw::AttachmentDelivery),
        any::<u8>().prop_map(Raw::DeleteAttachment),
        Just(Raw::ReplaceAttachmentsMap),
        any::<u8>().prop_map(Raw::ReceiptDelivery),
        any::<u8>().prop_map(Raw::ReceiptStage),
        any::<u8>().prop_map(Raw::DeleteReason),
        any::<u8>().prop_map(Raw::StagedReceiptWithoutReason),
        any::<u8>().prop_map(Raw::DeleteDelivery),
        any::<u8>().prop_map(Raw::DeliverySeal),
        (0..6u8).prop_map(Raw::Schema),
        any::<u8>().prop_map(Raw::UnitSerial),
        any::<u8>().prop_map(Raw::UnitForeignKey),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Raw::UnitSupersedes(a, b)),
        any::<u8>().prop_map(Raw::UnitStatusWord),
        any::<u8>().prop_map(Raw::DeleteUnitEvent),
        Just(Raw::ReplaceUnitEventsMap),
        any::<u8>().prop_map(Raw::LineAccessoryNotText),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (
            (any::<u8>(), 0..6u8, 0..5u8, proptest::option::of(any::<u8>()), proptest::option::weighted(0.2, any::<u8>())),
            (0..4u8, 0..10u8, proptest::option::weighted(0.3, any::<u8>())),
        )
            .prop_map(|((line, quantity, condition, serial, void), (stage, reason, delivery))| Step::Receipt {
                line, quantity, condition, serial, void, stage, reason, delivery,
            }),
        1 => (0..3u8, proptest::option::weighted(0.3, any::<u8>()))
            .prop_map(|(seal, replaces)| Step::Delivery { seal, replaces }),
        2 => (0..4u8, proptest::collection::vec(any::<u8>(), 0..3))
            .prop_map(|(verdict, resolves)| Step::Review { verdict, resolves }),
        2 => (proptest::option::of(any::<u8>()), 0..4u8)
            .prop_map(|(receipt, kind)| Step::Attach { receipt, kind }),
        1 => any::<u8>().prop_map(Step::RemoveAttachment),
        3 => (any::<u8>(), any::<u8>(), 0..9u8, any::<u8>())
            .prop_map(|(line, serial, step, variant)| Step::Unit { line, serial, step, variant }),
        1 => any::<u8>().prop_map(Step::Note),
        1 => proptest::option::of(0..28u8).prop_map(Step::ExpectedOn),
        1 => any::<u8>().prop_map(Step::AddLine),
        2 => raw().prop_map(Step::Raw),
        3 => Just(Step::Pull),
        5 => Just(Step::Upload),
    ]
}

struct Replica {
    doc: ShipmentDoc,
    who: Recorder,
    uploader: Uploader,
}

fn replica(server: &ShipmentDoc, user: &str, role: Role) -> Replica {
    let actor = ActorId::random();
    let mut doc = server.clone();
    doc.set_actor(actor.clone());
    let who = Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    };
    let uploader = Uploader::single_device(&who, role, actor);
    Replica { doc, who, uploader }
}

fn line(i: u8, quantity: u64) -> Line {
    Line {
        id: LineId::parse(format!("line-{i}")).unwrap(),
        item: format!("Item {i}"),
        category: "imaging".into(),
        unit: "unit".into(),
        quantity_expected: quantity,
        serials_expected: (0..quantity.min(3))
            .map(|s| format!("SN-{i}-{s}"))
            .collect(),
        accessories: vec!["Manual".into(), format!("Probe {i}")],
        unit_value: i.is_multiple_of(2).then(|| "1500.00 EUR".into()),
    }
}

/// The shipment as an older schema had it: schema 2 without the
/// `deliveries` map, schema 1 without `attachments` either.
fn as_schema(mut doc: ShipmentDoc, schema: u64) -> ShipmentDoc {
    let am = doc.automerge_mut();
    if schema < 4 {
        am.delete(ROOT, "unit_events").unwrap();
        let (_, lines) = am.get(ROOT, "lines").unwrap().unwrap();
        let keys: Vec<String> = am.keys(&lines).collect();
        for key in keys {
            let (_, line) = am.get(&lines, key.as_str()).unwrap().unwrap();
            let _ = am.delete(&line, "accessories");
            let _ = am.delete(&line, "unit_value");
        }
    }
    if schema < 3 {
        am.delete(ROOT, "deliveries").unwrap();
    }
    if schema < 2 {
        am.delete(ROOT, "attachments").unwrap();
    }
    am.put(ROOT, "schema", ScalarValue::Uint(schema)).unwrap();
    am.commit();
    assert_eq!(doc.read().unwrap().schema, schema);
    doc
}

fn server() -> ShipmentDoc {
    let new = NewShipment {
        id: ShipmentId::parse("jica-incr-1").unwrap(),
        donor: "JICA".into(),
        programme: String::new(),
        reference: String::new(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: None,
        note: String::new(),
        lines: vec![line(0, 4), line(1, 2)],
    };
    ShipmentDoc::create(
        &new,
        &UserId::parse("olena").unwrap(),
        ActorId::random(),
        T0,
    )
    .unwrap()
}

/// The `n`th key (wrapping) of the map at `ROOT[container]`, with its object.
fn nth_entry(am: &AutoCommit, container: &str, n: u8) -> Option<(String, automerge::ObjId)> {
    let (_, map) = am.get(ROOT, container).ok()??;
    let keys: Vec<String> = am.keys(&map).collect();
    if keys.is_empty() {
        return None;
    }
    let key = keys[usize::from(n) % keys.len()].clone();
    let (_, obj) = am.get(&map, key.as_str()).ok()??;
    Some((key, obj))
}

fn map_of(am: &AutoCommit, container: &str) -> Option<automerge::ObjId> {
    am.get(ROOT, container).ok()?.map(|(_, obj)| obj)
}

/// Makes a raw edit; edits whose target does not exist do nothing.
fn apply_raw(am: &mut AutoCommit, raw: &Raw) {
    let _ = (|| -> Option<()> {
        match raw {
            Raw::UnknownRootField => am.put(ROOT, "extra", "x").ok()?,
            Raw::UnknownReceiptField(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                am.put(&obj, "colour", "red").ok()?
            }
            Raw::ReceiptNoteNotText(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                am.put(&obj, "note", 7_i64).ok()?
            }
            Raw::DeleteReceipt(n) => {
                let (key, _) = nth_entry(am, "receipts", *n)?;
                let map = map_of(am, "receipts")?;
                am.delete(&map, key.as_str()).ok()?
            }
            Raw::OverwriteQuantity(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                am.put(&obj, "quantity", 3_i64).ok()?
            }
            Raw::HeaderDonor(n) => {
                let header = map_of(am, "shipment")?;
                am.put(&header, "donor", format!("Donor {n}")).ok()?
            }
            Raw::DeleteLine(n) => {
                let (key, _) = nth_entry(am, "lines", *n)?;
                let map = map_of(am, "lines")?;
                am.delete(&map, key.as_str()).ok()?
            }
            Raw::ReplaceReceiptsMap => {
                am.put_object(ROOT, "receipts", ObjType::Map).ok()?;
            }
            Raw::PushSerial(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                let (_, list) = am.get(&obj, "serials").ok()??;
                let len = am.length(&list);
                am.insert(&list, len, "SN-forged").ok()?
            }
            Raw::LineItem(n, v) => {
                let (_, obj) = nth_entry(am, "lines", *n)?;
                am.put(&obj, "item", format!("Renamed {v}")).ok()?
            }
            Raw::ReceiptMissingFields(n) => {
                let map = map_of(am, "receipts")?;
                let obj = am
                    .put_object(&map, format!("forged-{n}").as_str(), ObjType::Map)
                    .ok()?;
                am.put(&obj, "quantity", 1_i64).ok()?
            }
            Raw::ReviewNote(n) => {
                let (_, obj) = nth_entry(am, "reviews", *n)?;
                am.put(&obj, "note", ScalarValue::Str("rewritten".into()))
                    .ok()?
            }
            Raw::LineQuantity(n, q) => {
                let (_, obj) = nth_entry(am, "lines", *n)?;
                am.put(&obj, "quantity_expected", i64::from(*q) - 10).ok()?
            }
            Raw::ReceiptLine(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                am.put(&obj, "line_id", "line-99").ok()?
            }
            Raw::AttachmentReceipt(n) => {
                let (_, obj) = nth_entry(am, "attachments", *n)?;
                am.put(&obj, "receipt_id", "no-such-receipt").ok()?
            }
            Raw::AttachmentForeignKey(n) => {
                let (_, obj) = nth_entry(am, "attachments", *n)?;
                let key = ["removes", "signer_name", "sha256"][usize::from(*n) % 3];
                am.put(&obj, key, "x").ok()?
            }
            Raw::RemovalTarget(n) => {
                let (_, obj) = nth_entry(am, "attachments", *n)?;
                am.put(&obj, "removes", "no-such-attachment").ok()?
            }
            Raw::DeleteAttachment(n) => {
                let (key, _) = nth_entry(am, "attachments", *n)?;
                let map = map_of(am, "attachments")?;
                am.delete(&map, key.as_str()).ok()?
            }
            Raw::ReplaceAttachmentsMap => {
                am.put_object(ROOT, "attachments", ObjType::Map).ok()?;
            }
            Raw::ReceiptDelivery(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                am.put(&obj, "delivery_id", "no-such-delivery").ok()?
            }
            Raw::ReceiptStage(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                let stage = ["rejected", "accepted", "inspected"][usize::from(*n) % 3];
                am.put(&obj, "stage", stage).ok()?
            }
            Raw::DeleteReason(n) => {
                let (_, obj) = nth_entry(am, "receipts", *n)?;
                am.delete(&obj, "reason").ok()?
            }
            Raw::StagedReceiptWithoutReason(n) => {
                let (line, _) = nth_entry(am, "lines", *n)?;
                let map = map_of(am, "receipts")?;
                let obj = am
                    .put_object(&map, format!("forged-staged-{n}").as_str(), ObjType::Map)
                    .ok()?;
                am.put(&obj, "line_id", line).ok()?;
                am.put(&obj, "quantity", 1_u64).ok()?;
                am.put(&obj, "condition", "damaged").ok()?;
                am.put_object(&obj, "serials", ObjType::List).ok()?;
                am.put(&obj, "note", "").ok()?;
                am.put(&obj, "recorded_by", "anna").ok()?;
                am.put(&obj, "device_id", "anna-phone").ok()?;
                am.put(&obj, "recorded_at", T0).ok()?;
                am.put(&obj, "stage", "provisional").ok()?
            }
            Raw::DeleteDelivery(n) => {
                let (key, _) = nth_entry(am, "deliveries", *n)?;
                let map = map_of(am, "deliveries")?;
                am.delete(&map, key.as_str()).ok()?
            }
            Raw::DeliverySeal(n) => {
                let (_, obj) = nth_entry(am, "deliveries", *n)?;
                am.put(&obj, "seal", "open").ok()?
            }
            Raw::Schema(v) => {
                if map_of(am, "attachments").is_none() {
                    am.put_object(ROOT, "attachments", ObjType::Map).ok()?;
                }
                if *v >= 3 && map_of(am, "deliveries").is_none() {
                    am.put_object(ROOT, "deliveries", ObjType::Map).ok()?;
                }
                if *v >= 4 && map_of(am, "unit_events").is_none() {
                    am.put_object(ROOT, "unit_events", ObjType::Map).ok()?;
                }
                am.put(ROOT, "schema", ScalarValue::Uint(u64::from(*v)))
                    .ok()?
            }
            Raw::AttachmentDelivery(n) => {
                let (_, obj) = nth_entry(am, "attachments", *n)?;
                am.put(&obj, "delivery_id", "no-such-truck").ok()?
            }
            Raw::UnitSerial(n) => {
                let (_, obj) = nth_entry(am, "unit_events", *n)?;
                am.put(&obj, "serial", "SN-nowhere").ok()?
            }
            Raw::UnitForeignKey(n) => {
                let (_, obj) = nth_entry(am, "unit_events", *n)?;
                am.put(&obj, "asset_number", "A-1").ok()?;
                am.put(&obj, "status", "functioning").ok()?
            }
            Raw::UnitSupersedes(n, target) => {
                let (key, obj) = nth_entry(am, "unit_events", *n)?;
                let target = match target % 3 {
                    0 => key,
                    1 => "no-such-event".to_owned(),
                    _ => nth_entry(am, "unit_events", target / 3)?.0,
                };
                let (_, list) = am.get(&obj, "supersedes").ok()??;
                let len = am.length(&list);
                am.insert(&list, len, target).ok()?
            }
            Raw::UnitStatusWord(n) => {
                let (_, obj) = nth_entry(am, "unit_events", *n)?;
                am.put(&obj, "status", "on fire").ok()?
            }
            Raw::DeleteUnitEvent(n) => {
                let (key, _) = nth_entry(am, "unit_events", *n)?;
                let map = map_of(am, "unit_events")?;
                am.delete(&map, key.as_str()).ok()?
            }
            Raw::ReplaceUnitEventsMap => {
                am.put_object(ROOT, "unit_events", ObjType::Map).ok()?;
            }
            Raw::LineAccessoryNotText(n) => {
                let (_, obj) = nth_entry(am, "lines", *n)?;
                let (_, list) = am.get(&obj, "accessories").ok()??;
                am.insert(&list, 0, 42_i64).ok()?
            }
            Raw::ReceiptVoids(n, target) => {
                let (key, obj) = nth_entry(am, "receipts", *n)?;
                let voids = match target % 3 {
                    0 => key,
                    1 => "no-such-receipt".to_owned(),
                    _ => nth_entry(am, "receipts", target / 3)?.0,
                };
                am.put(&obj, "voids", voids).ok()?
            }
        };
        Some(())
    })();
}

fn do_step(r: &mut Replica, step: &Step, server: &ShipmentDoc, clock: i64) {
    let Ok(current) = r.doc.read() else {
        // A replica that broke its own copy with a raw edit can still
        // upload it; it does nothing through the model.
        if let Step::Raw(raw) = step {
            apply_raw(r.doc.automerge_mut(), raw);
        }
        return;
    };
    let receipt_ids: Vec<ReceiptId> = current.receipts.keys().cloned().collect();
    let delivery_ids: Vec<DeliveryId> = current.deliveries.keys().cloned().collect();
    let pick_delivery = |n: u8| {
        (!delivery_ids.is_empty())
            .then(|| delivery_ids[usize::from(n) % delivery_ids.len()].clone())
    };
    let line_ids: Vec<LineId> = current.lines.keys().cloned().collect();
    match step {
        Step::Receipt {
            line,
            quantity,
            condition,
            serial,
            void,
            stage,
            reason,
            delivery,
        } => {
            // Every line deleted (a forged edit): nothing to record against.
            let Some(line_id) = line_ids
                .get(usize::from(*line) % line_ids.len().max(1))
                .cloned()
            else {
                return;
            };
            let condition = [
                Condition::Good,
                Condition::Damaged,
                Condition::MissingParts,
                Condition::WrongItem,
                Condition::Good,
            ][usize::from(*condition)];
            let new = NewReceipt {
                id: ReceiptId::parse(format!("r-{clock}-{}", r.who.user)).unwrap(),
                line_id,
                quantity: u64::from(*quantity),
                condition,
                serials: serial
                    .map(|s| vec![format!("SN-{}-{}", s % 3, s % 2)])
                    .unwrap_or_default(),
                note: String::new(),
                voids: void
                    .filter(|_| !receipt_ids.is_empty())
                    .map(|v| receipt_ids[usize::from(v) % receipt_ids.len()].clone()),
                stage: [
                    None,
                    Some(Stage::Provisional),
                    Some(Stage::Accepted),
                    Some(Stage::Rejected),
                ][usize::from(*stage)],
                // Mostly a reason, so that short and damaged counts are recorded.
                reason: Reason::ALL.get(usize::from(*reason)).copied(),
                delivery_id: delivery.and_then(pick_delivery),
            };
            let _ = r.doc.record_receipt(new, &r.who, clock);
        }
        Step::Delivery { seal, replaces } => {
            let new = NewDelivery {
                id: DeliveryId::parse(format!("d-{clock}-{}", r.who.user)).unwrap(),
                waybill: "WB-1".into(),
                transporter: "Nova Poshta".into(),
                vehicle: "AA 1234 BC".into(),
                seal: Seal::ALL[usize::from(*seal)],
                seal_number: "S-77".into(),
                packages_expected: Some(4),
                packages_received: Some(u64::from(*seal)),
                arrived_at: clock - 60_000,
                note: String::new(),
                replaces: replaces.and_then(pick_delivery),
            };
            let _ = r.doc.record_delivery(new, &r.who, clock);
        }
        Step::Review { verdict, resolves } => {
            let new = NewReview {
                id: ReviewId::parse(format!("rv-{clock}")).unwrap(),
                note: "checked".into(),
                verdict: [
                    None,
                    Some(Verdict::Approved),
                    Some(Verdict::HasIssues),
                    Some(Verdict::Rejected),
                ][usize::from(*verdict)],
                resolves: resolves
                    .iter()
                    .filter(|_| !receipt_ids.is_empty())
                    .map(|i| receipt_ids[usize::from(*i) % receipt_ids.len()].clone())
                    .collect(),
            };
            let _ = r.doc.add_review(new, &r.who.user, clock);
        }
        Step::Attach { receipt, kind } => {
            let file_kind = [
                FileKind::Photo,
                FileKind::Document,
                FileKind::Signature,
                FileKind::Signature,
            ][usize::from(*kind)];
            let new = NewAttachment {
                id: AttachmentId::parse(format!("a-{clock}-{}", r.who.user)).unwrap(),
                file_kind,
                receipt_id: receipt
                    .filter(|_| !receipt_ids.is_empty())
                    .map(|i| receipt_ids[usize::from(i) % receipt_ids.len()].clone()),
                file: FileRef {
                    sha256: format!("{:064x}", clock % 7),
                    media_type: if *kind == 1 {
                        "application/pdf"
                    } else {
                        "image/jpeg"
                    }
                    .into(),
                    size: 200_000,
                    width: (*kind != 1).then_some(1600),
                    height: (*kind != 1).then_some(1200),
                },
                // The last kind forgets the signer: the model refuses it.
                signer: (*kind == 2).then(|| Signer {
                    name: "Ivan Petrenko".into(),
                    role: "driver".into(),
                }),
                note: "crate label".into(),
                // Signatures mostly at a truck, when there is one.
                delivery_id: (*kind == 2).then(|| pick_delivery(clock as u8)).flatten(),
            };
            let _ = r.doc.record_attachment(new, &r.who, clock);
        }
        Step::RemoveAttachment(n) => {
            let files: Vec<AttachmentId> =
                current.active_attachments().map(|a| a.id.clone()).collect();
            if let Some(target) = files.get(usize::from(*n) % files.len().max(1)) {
                let id = AttachmentId::parse(format!("rm-{clock}-{}", r.who.user)).unwrap();
                let _ = r
                    .doc
                    .remove_attachment(id, target.clone(), "blurred", &r.who, clock);
            }
        }
        Step::Unit {
            line,
            serial,
            step,
            variant,
        } => {
            let Some(line_id) = line_ids
                .get(usize::from(*line) % line_ids.len().max(1))
                .cloned()
            else {
                return;
            };
            // Mostly serials the lines expect or receipts counted; now and
            // then one nobody has.
            let serial = match serial % 8 {
                7 => "SN-unknown".to_owned(),
                s => format!("SN-{}-{}", s % 3, s % 2),
            };
            let on = format!("2026-12-{:02}", variant % 28 + 1);
            let note = if variant % 5 == 0 { "" } else { "checked" };
            let step = match step {
                0 => UnitStep::Checklist {
                    checked: vec!["Manual".into()],
                },
                1 => UnitStep::Installed {
                    on,
                    installer: "Siemens".into(),
                },
                2 => UnitStep::Commissioned { on },
                3 => UnitStep::AcceptanceTest {
                    result: TestResult::ALL[usize::from(*variant) % TestResult::ALL.len()],
                    on,
                },
                4 => UnitStep::Training {
                    on,
                    people: u64::from(variant % 4),
                    trainer: "Dr Koval".into(),
                },
                5 => UnitStep::Warranty {
                    starts_on: "2026-12-01".into(),
                    ends_on: on,
                    service_agent: String::new(),
                },
                6 => UnitStep::Location {
                    department: "Radiology".into(),
                    room: format!("{variant}"),
                    custodian: "Dr Shevchenko".into(),
                },
                7 => UnitStep::Status {
                    status: UnitStatus::ALL[usize::from(*variant) % UnitStatus::ALL.len()],
                },
                _ => UnitStep::HandedOver {
                    on,
                    asset_number: format!("INV-{variant}"),
                },
            };
            let new = NewUnitEvent {
                id: UnitEventId::parse(format!("u-{clock}-{}", r.who.user)).unwrap(),
                line_id,
                serial,
                step,
                note: note.into(),
            };
            let _ = r.doc.record_unit_event(new, &r.who, clock);
        }
        Step::Note(n) => {
            let _ = r.doc.set_note(&format!("note {n}"), clock);
        }
        Step::ExpectedOn(day) => {
            let date = day.map(|d| format!("2026-12-{:02}", d + 1));
            let _ = r.doc.set_expected_on(date.as_deref(), clock);
        }
        Step::AddLine(n) => {
            let _ = r.doc.add_line(&line(n % 8 + 2, 3), clock);
        }
        Step::Raw(raw) => apply_raw(r.doc.automerge_mut(), raw),
        Step::Pull => {
            let mut theirs = server.clone();
            let _ = r.doc.automerge_mut().merge(theirs.automerge_mut());
        }
        Step::Upload => {}
    }
}

/// Today's whole-document check, step by step as the merge did it before
/// it read incrementally: the oracle.
fn whole_document_verdict(
    server: &ShipmentDoc,
    changes: &[Change],
    uploader: &Uploader,
) -> Result<Shipment, String> {
    let before = server.read().map_err(|e| e.to_string())?;
    let mut doc = server.clone();
    let mut fresh = Vec::new();
    for change in changes {
        if doc
            .automerge_mut()
            .get_change_by_hash(&change.hash())
            .is_some()
            || fresh.iter().any(|c: &Change| c.hash() == change.hash())
        {
            continue;
        }
        if !uploader.actors.contains(change.actor_id()) {
            return Err(format!("wrong actor {}", change.actor_id()));
        }
        fresh.push(change.clone());
    }
    if fresh.is_empty() {
        return Ok(before);
    }
    check_lineage(doc.automerge_mut().document(), &fresh).map_err(|e| e.to_string())?;
    doc.automerge_mut()
        .apply_changes(fresh)
        .map_err(|e| e.to_string())?;
    if !doc.automerge_mut().get_missing_deps(&[]).is_empty() {
        return Err("missing dependencies".into());
    }
    let after = read_shipment(doc.automerge()).map_err(|e| Refusal::Invalid(e).to_string())?;
    after
        .check_transition_from(&before)
        .map_err(|e| Refusal::Invalid(e).to_string())?;
    check_edit(&before, &after, &uploader.editor).map_err(|e| Refusal::Forbidden(e).to_string())?;
    Ok(after)
}

/// The server's way: merged in place into a copy, with the history index
/// carried from upload to upload as the document cache carries it.
fn incremental_verdict(
    server: &ShipmentDoc,
    lineage: &mut LineageIndex,
    changes: Vec<Change>,
    uploader: &Uploader,
) -> (Result<Shipment, String>, Option<ShipmentDoc>) {
    let mut doc = server.clone();
    let before = server.read().unwrap();
    match merge_into(&mut doc, &before, lineage, changes, uploader) {
        Ok(m) => (Ok(m.shipment), Some(doc)),
        Err(Refusal::WrongActor { found, .. }) => {
            let actor: ActorId = found.as_str().try_into().unwrap();
            (Err(format!("wrong actor {actor}")), None)
        }
        Err(Refusal::MissingDependencies { .. }) => (Err("missing dependencies".into()), None),
        Err(Refusal::Corrupt { reason }) => (Err(reason), None),
        Err(e) => (Err(e.to_string()), None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn incremental_checks_agree_with_the_whole_document(
        steps in proptest::collection::vec((0..5usize, step()), 1..40),
        schema in prop_oneof![1 => Just(1u64), 1 => Just(2u64), 1 => Just(3u64), 3 => Just(4u64)],
    ) {
        let mut server = as_schema(server(), schema);
        let mut replicas = [
            replica(&server, "anna", Role::Receiver),
            replica(&server, "bohdan", Role::Receiver),
            replica(&server, "olena", Role::Coordinator),
            replica(&server, "iryna", Role::Receiver),
            // Two coordinators: concurrent header and line edits conflict.
            replica(&server, "petro", Role::Coordinator),
        ];
        let mut accepted = 0;
        let mut lineage = LineageIndex::default();
        for (clock, (who, step)) in steps.iter().enumerate() {
            let clock = T0 + 1_000 * (clock as i64 + 1);
            let r = &mut replicas[*who];
            do_step(r, step, &server, clock);
            if !matches!(step, Step::Upload) {
                continue;
            }
            let changes = r.doc.automerge_mut().get_changes(&[]);
            let oracle = whole_document_verdict(&server, &changes, &r.uploader);
            let (verdict, merged) = incremental_verdict(&server, &mut lineage, changes, &r.uploader);
            prop_assert_eq!(&verdict, &oracle);
            if let Some(merged) = merged {
                accepted += 1;
                server = merged;
            }
        }
        // The final state reads the same both ways too.
        prop_assert!(server.read().is_ok(), "accepted {accepted} uploads into an unreadable document");
    }
}
