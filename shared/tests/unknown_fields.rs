//! Unknown fields are refused anywhere in a document — the root, the header,
//! a line, a receipt, a review — as an attacker would add them, with a raw
//! automerge change; documents this code writes keep reading.

#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, Change, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ReviewId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, MAX_REPORTED_KEY_CHARS, ModelError, NewReceipt, NewReview, NewShipment,
    Reason, Recorder, ShipmentDoc, Verdict, keys,
};
use aidsync_shared::roles::Role;
use aidsync_shared::sync::server::{Refusal, Uploader, merge_upload};

const T0: i64 = 1_790_000_000_000;

fn line(id: &str, qty: u64, serials: &[&str]) -> Line {
    Line {
        id: LineId::parse(id).unwrap(),
        item: format!("item {id}"),
        category: "imaging".into(),
        unit: "unit".into(),
        quantity_expected: qty,
        serials_expected: serials.iter().map(|s| s.to_string()).collect(),
        accessories: Vec::new(),
        unit_value: None,
    }
}

fn who(user: &str) -> Recorder {
    Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    }
}

fn receipt(id: &str, line: &str, quantity: u64, serials: &[&str]) -> NewReceipt {
    NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse(line).unwrap(),
        quantity,
        condition: Condition::Good,
        serials: serials.iter().map(|s| s.to_string()).collect(),
        note: String::new(),
        voids: None,
        stage: None,
        // Any reason meets the model\'s rule on short, over or damaged
        // counts; these receipts are about something else.
        reason: Some(Reason::Short),
        delivery_id: None,
    }
}

/// A shipment as this code writes it: every kind of map the model has, each
/// optional field both present and absent somewhere.
fn written_by_this_code() -> ShipmentDoc {
    let new = NewShipment {
        id: ShipmentId::parse("jica-fields-1").unwrap(),
        donor: "JICA".into(),
        programme: "Kharkiv".into(),
        reference: "M-7".into(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: Some("2026-11-01".into()),
        note: "two pallets".into(),
        lines: vec![line("mri", 1, &["MRI-1"]), line("us", 4, &[])],
    };
    let olena = UserId::parse("olena").unwrap();
    let mut d = ShipmentDoc::create(&new, &olena, ActorId::random(), T0).unwrap();
    d.record_receipt(receipt("r1", "mri", 1, &["MRI-1"]), &who("anna"), T0 + 1)
        .unwrap();
    d.record_receipt(receipt("r2", "us", 3, &[]), &who("anna"), T0 + 2)
        .unwrap();
    let mut void = receipt("r3", "us", 0, &[]);
    void.voids = Some(ReceiptId::parse("r2").unwrap());
    d.record_receipt(void, &who("anna"), T0 + 3).unwrap();
    d.add_review(
        NewReview {
            id: ReviewId::parse("rv1").unwrap(),
            note: "r2 was counted twice".into(),
            verdict: Some(Verdict::HasIssues),
            resolves: vec![ReceiptId::parse("r2").unwrap()],
        },
        &olena,
        T0 + 4,
    )
    .unwrap();
    d.add_review(
        NewReview {
            id: ReviewId::parse("rv2").unwrap(),
            note: "seen".into(),
            verdict: None,
            resolves: Vec::new(),
        },
        &olena,
        T0 + 5,
    )
    .unwrap();
    d.add_line(&line("ct", 1, &[]), T0 + 6).unwrap();
    d.set_note("one pallet opened", T0 + 7).unwrap();
    d.set_expected_on(None, T0 + 8).unwrap();
    d
}

/// The map at `path` (a key per level, from the root).
fn obj_at(d: &ShipmentDoc, path: &[&str]) -> ObjId {
    let mut obj = ROOT;
    for key in path {
        obj = d.automerge().get(&obj, *key).unwrap().unwrap().1;
    }
    obj
}

/// A copy of `base` after an attacker's raw change that puts `key` into the
/// map at `path`.
fn with_field(base: &ShipmentDoc, path: &[&str], key: &str, value: &str) -> ShipmentDoc {
    let mut d = base.clone();
    d.set_actor(ActorId::random());
    let obj = obj_at(&d, path);
    d.automerge_mut().put(&obj, key, value).unwrap();
    d.automerge_mut().commit();
    d
}

fn assert_unknown_field(d: &ShipmentDoc, path: &str, key: &str) {
    let err = d.read().unwrap_err();
    assert_eq!(
        err,
        ModelError::UnknownField {
            path: path.into(),
            key: key.into(),
        },
        "{err}"
    );
    assert_eq!(err.to_string(), format!("{path}: unknown field \"{key}\""));
}

#[test]
fn documents_written_by_this_code_still_read() {
    let mut d = written_by_this_code();
    let s = d.read().unwrap();
    assert_eq!(
        (s.lines.len(), s.receipts.len(), s.reviews.len()),
        (3, 3, 2)
    );
    assert_eq!(s.voided().len(), 1);
    assert_eq!(s.header.expected_on, None);

    // Through a save and a load, as the server stores it and a phone gets it.
    let loaded = ShipmentDoc::load(&d.save()).unwrap();
    assert_eq!(loaded.read().unwrap(), s);

    // Concurrent edits of an editable field are a conflict, not an unknown field.
    let mut a = d.clone();
    let mut b = d.clone();
    a.set_actor(ActorId::random());
    b.set_actor(ActorId::random());
    a.set_note("from a", T0 + 10).unwrap();
    b.set_note("from b", T0 + 10).unwrap();
    a.automerge_mut().merge(b.automerge_mut()).unwrap();
    let merged = a.read().unwrap();
    assert_eq!(merged.conflicts.len(), 1, "{:?}", merged.conflicts);
}

#[test]
fn unknown_root_field_is_refused() {
    let base = written_by_this_code();
    let d = with_field(&base, &[], "photos", "x");
    assert_unknown_field(&d, "document", "photos");

    // A whole map under an unknown key is refused the same way.
    let mut d = base.clone();
    let extra = d
        .automerge_mut()
        .put_object(ROOT, "extra", ObjType::Map)
        .unwrap();
    d.automerge_mut().put(&extra, "payload", "x").unwrap();
    d.automerge_mut().commit();
    assert_unknown_field(&d, "document", "extra");
}

#[test]
fn unknown_header_field_is_refused() {
    let d = with_field(
        &written_by_this_code(),
        &[keys::SHIPMENT],
        "customs_code",
        "x",
    );
    assert_unknown_field(&d, "shipment", "customs_code");
}

#[test]
fn unknown_line_field_is_refused() {
    let d = with_field(
        &written_by_this_code(),
        &[keys::LINES, "mri"],
        "colour",
        "x",
    );
    assert_unknown_field(&d, "lines/mri", "colour");
}

#[test]
fn unknown_receipt_field_is_refused() {
    let d = with_field(
        &written_by_this_code(),
        &[keys::RECEIPTS, "r1"],
        "blob",
        &"x".repeat(100_000),
    );
    assert_unknown_field(&d, "receipts/r1", "blob");
}

#[test]
fn unknown_review_field_is_refused() {
    let d = with_field(
        &written_by_this_code(),
        &[keys::REVIEWS, "rv1"],
        "score",
        "x",
    );
    assert_unknown_field(&d, "reviews/rv1", "score");
}

/// Serial lists have no keys; what could smuggle data into them is an item
/// that is not text, such as a map with keys of its own.
#[test]
fn serial_lists_hold_only_text() {
    let base = written_by_this_code();
    for (path, expected) in [
        (
            &[keys::RECEIPTS, "r1", keys::SERIALS][..],
            "receipts/r1/serials/1",
        ),
        (
            &[keys::LINES, "mri", keys::SERIALS_EXPECTED][..],
            "lines/mri/serials_expected/1",
        ),
        (
            &[keys::REVIEWS, "rv1", keys::RESOLVES][..],
            "reviews/rv1/resolves/1",
        ),
    ] {
        let mut d = base.clone();
        let list = obj_at(&d, path);
        let am = d.automerge_mut();
        let item = am.insert_object(&list, 1, ObjType::Map).unwrap();
        am.put(&item, "payload", "x").unwrap();
        am.commit();
        assert_eq!(
            d.read().unwrap_err(),
            ModelError::WrongType {
                path: expected.into(),
                expected: "text",
            }
        );
    }
}

#[test]
fn known_fields_of_the_wrong_type_are_refused() {
    let base = written_by_this_code();
    let wrong = |path: &[&str], key: &str, put: &dyn Fn(&mut ShipmentDoc, &ObjId, &str)| {
        let mut d = base.clone();
        let obj = obj_at(&d, path);
        put(&mut d, &obj, key);
        d.automerge_mut().commit();
        d.read().unwrap_err()
    };
    let map = |d: &mut ShipmentDoc, obj: &ObjId, key: &str| {
        let m = d
            .automerge_mut()
            .put_object(obj, key, ObjType::Map)
            .unwrap();
        d.automerge_mut().put(&m, "payload", "x").unwrap();
    };
    let float = |d: &mut ShipmentDoc, obj: &ObjId, key: &str| {
        d.automerge_mut()
            .put(obj, key, ScalarValue::F64(1.5))
            .unwrap();
    };
    let text = |d: &mut ShipmentDoc, obj: &ObjId, key: &str| {
        d.automerge_mut().put(obj, key, "x").unwrap();
    };

    assert_eq!(
        wrong(&[keys::SHIPMENT], keys::NOTE, &map),
        ModelError::WrongType {
            path: "shipment/note".into(),
            expected: "text",
        }
    );
    assert_eq!(
        wrong(&[keys::RECEIPTS, "r1"], keys::SERIALS, &map),
        ModelError::WrongType {
            path: "receipts/r1/serials".into(),
            expected: "a list",
        }
    );
    assert_eq!(
        wrong(&[keys::LINES, "us"], keys::QUANTITY_EXPECTED, &float),
        ModelError::WrongType {
            path: "lines/us/quantity_expected".into(),
            expected: "an integer",
        }
    );
    assert_eq!(
        wrong(&[keys::REVIEWS, "rv1"], keys::RESOLVES, &text),
        ModelError::WrongType {
            path: "reviews/rv1/resolves".into(),
            expected: "a list",
        }
    );
    assert_eq!(
        wrong(&[], keys::RECEIPTS, &text),
        ModelError::WrongType {
            path: "receipts".into(),
            expected: "a map",
        }
    );
}

/// The error names a huge key by its start only: a refusal must not echo
/// the payload back to the sender, or into the server's log.
#[test]
fn a_huge_unknown_key_is_named_briefly() {
    let key = format!("k{}", "\u{0}".repeat(100_000));
    let d = with_field(&written_by_this_code(), &[keys::RECEIPTS, "r1"], &key, "x");
    let err = d.read().unwrap_err();
    let ModelError::UnknownField { path, key: shown } = &err else {
        panic!("expected an unknown field, got {err}");
    };
    assert_eq!(path, "receipts/r1");
    assert_eq!(shown.chars().count(), MAX_REPORTED_KEY_CHARS + 1);
    assert!(shown.starts_with('k') && shown.ends_with('…'));
    let message = err.to_string();
    assert!(message.len() < 500, "{} bytes", message.len());
    assert!(!message.contains('\u{0}'), "control characters are escaped");
}

/// A newer schema version does not switch the check off: this build cannot
/// vouch for fields it does not know, and anyone could write a bigger number.
#[test]
fn a_newer_schema_is_refused_whole() {
    let mut d = with_field(&written_by_this_code(), &[], "photos", "x");
    d.automerge_mut()
        .put(
            ROOT,
            keys::SCHEMA,
            ScalarValue::Uint(aidsync_shared::model::SCHEMA_VERSION + 1),
        )
        .unwrap();
    d.automerge_mut().commit();
    assert_eq!(
        d.read().unwrap_err(),
        ModelError::UnsupportedSchema {
            found: (aidsync_shared::model::SCHEMA_VERSION + 1).to_string()
        }
    );
}

/// A phone holding a document with an unknown field refuses to build on it,
/// leaving the document as it was.
#[test]
fn the_phone_refuses_to_record_on_a_document_with_unknown_fields() {
    let mut d = with_field(&written_by_this_code(), &[keys::SHIPMENT], "junk", "x");
    let before = d.heads();
    let err = d
        .record_receipt(receipt("r9", "us", 1, &[]), &who("anna"), T0 + 20)
        .unwrap_err();
    assert!(matches!(&err, ModelError::UnknownField { key, .. } if key == "junk"));
    assert_eq!(d.heads(), before);
}

/// The server's merge step refuses a receiver's own, correctly signed
/// receipt that carries an extra field, and keeps its document unchanged.
#[test]
fn an_upload_adding_a_field_to_the_uploaders_own_receipt_is_refused() {
    let mut current = written_by_this_code();
    let current_heads = current.heads();
    let current_bytes = current.save();

    let actor = ActorId::random();
    let anna = who("anna");
    let uploader = Uploader::single_device(&anna, Role::Receiver, actor.clone());
    let mut phone = current.clone();
    phone.set_actor(actor);
    phone
        .record_receipt(receipt("r9", "us", 1, &[]), &anna, T0 + 20)
        .unwrap();
    let honest: Vec<Change> = phone.automerge_mut().get_changes(&current_heads);
    let r9 = obj_at(&phone, &[keys::RECEIPTS, "r9"]);
    phone
        .automerge_mut()
        .put(&r9, "blob", "x".repeat(100_000))
        .unwrap();
    phone.automerge_mut().commit();
    let forged: Vec<Change> = phone.automerge_mut().get_changes(&current_heads);

    match merge_upload(&current, forged, &uploader) {
        Err(Refusal::Invalid(ModelError::UnknownField { path, key })) => {
            assert_eq!((path.as_str(), key.as_str()), ("receipts/r9", "blob"));
        }
        Err(other) => panic!("expected an invalid-model refusal, got {other}"),
        Ok(_) => panic!("the upload with an unknown field was accepted"),
    }
    assert_eq!(current.heads(), current_heads);
    assert_eq!(current.save(), current_bytes);

    // The same receipt without the extra field goes through: the field was
    // the reason, not the receipt.
    let merged = merge_upload(&current, honest, &uploader).unwrap();
    assert!(
        merged
            .shipment
            .receipts
            .contains_key(&ReceiptId::parse("r9").unwrap())
    );
}
