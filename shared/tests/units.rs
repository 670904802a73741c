//! A serialised unit's life after receipt (schema 4): steps recorded
//! offline by receivers, concurrent ones merged and shown as conflicts, the
//! status history kept, the hand-over a coordinator's, and the counts a
//! coordinator sees.

#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, ROOT, ReadDoc};

use aidsync_shared::ids::{
    DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UnitEventId, UserId,
};
use aidsync_shared::model::{
    Condition, Line, ModelError, NewReceipt, NewShipment, NewUnitEvent, Reason, Recorder,
    ShipmentDoc, StepKind, TestResult, UnitCounts, UnitKey, UnitStatus, UnitStep, read_shipment,
};
use aidsync_shared::roles::{Forbidden, Role};
use aidsync_shared::sync::server::{Refusal, Uploader, merge_upload};

const T0: i64 = 1_796_515_200_000; // 2026-12-06

fn who(user: &str) -> Recorder {
    Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    }
}

fn shipment() -> ShipmentDoc {
    let new = NewShipment {
        id: ShipmentId::parse("jica-units-1").unwrap(),
        donor: "JICA".into(),
        programme: "Medical equipment 2026".into(),
        reference: "JICA-UA-2026-021".into(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: None,
        note: String::new(),
        lines: vec![Line {
            id: LineId::parse("ct").unwrap(),
            item: "CT scanner 64-slice".into(),
            category: "imaging".into(),
            unit: "system".into(),
            quantity_expected: 2,
            serials_expected: vec!["CT-1".into(), "CT-2".into()],
            accessories: vec!["Operator manual".into(), "Phantom kit".into()],
            unit_value: Some("650000.00 EUR".into()),
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

fn event(id: &str, serial: &str, step: UnitStep, note: &str) -> NewUnitEvent {
    NewUnitEvent {
        id: UnitEventId::parse(id).unwrap(),
        line_id: LineId::parse("ct").unwrap(),
        serial: serial.into(),
        step,
        note: note.into(),
    }
}

/// One unit counted in good order, short of the line's two.
fn one_good(id: &str, serial: &str) -> NewReceipt {
    NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse("ct").unwrap(),
        quantity: 1,
        condition: Condition::Good,
        serials: vec![serial.into()],
        note: String::new(),
        voids: None,
        stage: None,
        reason: Some(Reason::Short),
        delivery_id: None,
    }
}

fn status(s: UnitStatus) -> UnitStep {
    UnitStep::Status { status: s }
}

fn unit(serial: &str) -> UnitKey {
    UnitKey {
        line_id: LineId::parse("ct").unwrap(),
        serial: serial.into(),
    }
}

#[test]
fn a_unit_goes_from_receipt_to_accepted_and_every_step_reads_back() {
    let mut doc = shipment();
    let anna = who("anna");
    doc.record_receipt(one_good("r1", "CT-1"), &anna, T0)
        .unwrap();
    let steps = [
        UnitStep::Checklist {
            checked: vec!["Operator manual".into()],
        },
        UnitStep::Installed {
            on: "2026-12-07".into(),
            installer: "Siemens Healthineers".into(),
        },
        UnitStep::Commissioned {
            on: "2026-12-08".into(),
        },
        UnitStep::AcceptanceTest {
            result: TestResult::Passed,
            on: "2026-12-09".into(),
        },
        UnitStep::Training {
            on: "2026-12-10".into(),
            people: 6,
            trainer: "Dr Koval".into(),
        },
        UnitStep::Warranty {
            starts_on: "2026-12-09".into(),
            ends_on: "2027-01-31".into(),
            service_agent: "Medservice Kharkiv".into(),
        },
        UnitStep::Location {
            department: "Radiology".into(),
            room: "104".into(),
            custodian: "Dr Shevchenko".into(),
        },
        status(UnitStatus::Functioning),
    ];
    for (i, step) in steps.iter().enumerate() {
        doc.record_unit_event(
            event(&format!("e{i}"), "CT-1", step.clone(), ""),
            &anna,
            T0 + 1 + i as i64,
        )
        .unwrap();
    }

    // Read back from the saved bytes, as another replica would.
    let s = ShipmentDoc::load(&doc.save()).unwrap().read().unwrap();
    assert_eq!(s.unit_events.len(), steps.len());
    let units = s.units();
    assert_eq!(units.len(), 2, "both expected serials are units");
    let ct1 = &units[0];
    assert_eq!(ct1.serial, "CT-1");
    assert_eq!(ct1.accessories, ["Operator manual", "Phantom kit"]);
    assert_eq!(
        ct1.received.as_ref().map(|r| r.condition),
        Some(Condition::Good)
    );
    for step in &steps {
        assert_eq!(
            ct1.step(step.kind()).map(|e| &e.step),
            Some(step),
            "{:?}",
            step.kind()
        );
    }
    assert!(ct1.installed() && ct1.accepted() && !ct1.handed_over());
    assert_eq!(ct1.status(), Some(UnitStatus::Functioning));
    assert!(ct1.warranty_ends_soon("2026-12-06"), "ends in 56 days");
    assert!(
        !ct1.warranty_ends_soon("2026-10-01"),
        "more than 90 days ahead"
    );
    assert!(!ct1.warranty_ends_soon("2027-02-01"), "already ended");

    let mut counts = UnitCounts::default();
    for u in &units {
        counts.add(u, "2026-12-06");
    }
    assert_eq!(
        counts,
        UnitCounts {
            units: 2,
            received: 1,
            installed: 1,
            commissioned: 1,
            accepted: 1,
            functioning: 1,
            not_functioning: 0,
            handed_over: 0,
            in_conflict: 0,
            warranty_ends_soon: 1,
        }
    );
}

#[test]
fn concurrent_status_reports_conflict_until_someone_records_it_again() {
    let server = shipment();
    let mut anna = server.clone();
    anna.set_actor(ActorId::random());
    let mut bohdan = server.clone();
    bohdan.set_actor(ActorId::random());
    anna.record_unit_event(
        event("a1", "CT-2", status(UnitStatus::Functioning), ""),
        &who("anna"),
        T0 + 10,
    )
    .unwrap();
    // Offline, not having seen anna's report.
    bohdan
        .record_unit_event(
            event(
                "b1",
                "CT-2",
                status(UnitStatus::AwaitingRepair),
                "gantry motor fault",
            ),
            &who("bohdan"),
            T0 + 5,
        )
        .unwrap();
    anna.automerge_mut().merge(bohdan.automerge_mut()).unwrap();
    let s = anna.read().unwrap();
    let ct2 = s.units().into_iter().find(|u| u.serial == "CT-2").unwrap();
    let state = &ct2.steps[&StepKind::Status];
    assert!(state.in_conflict(), "neither saw the other");
    assert_eq!(state.current.len(), 2);
    assert_eq!(
        state.latest().map(|e| e.id.as_str()),
        Some("a1"),
        "the later report shows first"
    );
    let mut counts = UnitCounts::default();
    counts.add(&ct2, "2026-12-06");
    assert_eq!(counts.in_conflict, 1);

    // Anna, now seeing both, reports again: it supersedes both.
    let settled = anna
        .record_unit_event(
            event(
                "a2",
                "CT-2",
                status(UnitStatus::NeedsAttention),
                "works, motor noisy",
            ),
            &who("anna"),
            T0 + 20,
        )
        .unwrap();
    let mut supersedes = settled.supersedes.clone();
    supersedes.sort();
    assert_eq!(
        supersedes,
        [
            UnitEventId::parse("a1").unwrap(),
            UnitEventId::parse("b1").unwrap()
        ]
    );
    let s = anna.read().unwrap();
    let ct2 = s.units().into_iter().find(|u| u.serial == "CT-2").unwrap();
    let state = &ct2.steps[&StepKind::Status];
    assert!(!state.in_conflict());
    assert_eq!(ct2.status(), Some(UnitStatus::NeedsAttention));
    // The history keeps all three, oldest first.
    let history: Vec<&str> = state.history.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(history, ["b1", "a1", "a2"]);
    assert_eq!(
        s.current_unit_events(&unit("CT-2"), StepKind::Status),
        [UnitEventId::parse("a2").unwrap()]
    );
}

#[test]
fn steps_that_break_a_rule_are_refused_and_change_nothing() {
    let mut doc = shipment();
    let anna = who("anna");
    let heads = doc.heads();
    let invalid = |r: Result<_, ModelError>| match r {
        Err(ModelError::Invalid { path, reason }) => format!("{path}: {reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    };
    let cases = [
        (
            event(
                "x1",
                "CT-1",
                UnitStep::AcceptanceTest {
                    result: TestResult::Failed,
                    on: "2026-12-09".into(),
                },
                "",
            ),
            "a failed test needs a note",
        ),
        (
            event("x2", "CT-1", status(UnitStatus::NotFunctioning), " "),
            "needs a reason",
        ),
        (
            event("x3", "CT-9", status(UnitStatus::Functioning), ""),
            "neither expects nor has received",
        ),
        (
            event(
                "x4",
                "CT-1",
                UnitStep::Warranty {
                    starts_on: "2027-01-01".into(),
                    ends_on: "2026-12-31".into(),
                    service_agent: String::new(),
                },
                "",
            ),
            "ends before it starts",
        ),
        (
            event(
                "x5",
                "CT-1",
                UnitStep::Installed {
                    on: "7 December".into(),
                    installer: "Siemens".into(),
                },
                "",
            ),
            "YYYY-MM-DD",
        ),
        (
            event(
                "x6",
                "CT-1",
                UnitStep::Training {
                    on: "2026-12-10".into(),
                    people: 0,
                    trainer: "Dr Koval".into(),
                },
                "",
            ),
            "between 1 and",
        ),
    ];
    for (new, expected) in cases {
        let id = new.id.clone();
        let message = invalid(doc.record_unit_event(new, &anna, T0 + 1));
        assert!(message.contains(expected), "{id}: {message}");
    }
    assert_eq!(doc.heads(), heads, "nothing was written");

    // A serial a receipt counted, though the line did not expect it, is a
    // unit too.
    doc.record_receipt(one_good("r-extra", "CT-9"), &anna, T0 + 2)
        .unwrap();
    doc.record_unit_event(
        event("x7", "CT-9", status(UnitStatus::Functioning), ""),
        &anna,
        T0 + 3,
    )
    .unwrap();
}

#[test]
fn documents_before_schema_4_read_and_take_unit_steps_once_upgraded() {
    let mut doc = shipment();
    let am = doc.automerge_mut();
    am.delete(ROOT, "unit_events").unwrap();
    let (_, lines) = am.get(ROOT, "lines").unwrap().unwrap();
    let (_, ct) = am.get(&lines, "ct").unwrap().unwrap();
    am.delete(&ct, "accessories").unwrap();
    am.delete(&ct, "unit_value").unwrap();
    am.put(ROOT, "schema", 3_u64).unwrap();
    am.commit();
    let s = read_shipment(doc.automerge()).unwrap();
    assert_eq!(s.schema, 3);
    assert!(s.lines.values().all(|l| l.accessories.is_empty()));
    let refused = doc.record_unit_event(
        event("e1", "CT-1", status(UnitStatus::Functioning), ""),
        &who("anna"),
        T0 + 1,
    );
    assert!(
        matches!(refused, Err(ModelError::NoUnitRecords { schema: 3 })),
        "{refused:?}"
    );
    // A line's accessories do not belong in a schema 3 document.
    let am = doc.automerge_mut();
    am.put_object(&ct, "accessories", automerge::ObjType::List)
        .unwrap();
    am.commit();
    assert!(matches!(
        read_shipment(doc.automerge()),
        Err(ModelError::UnknownField { .. })
    ));
    let am = doc.automerge_mut();
    am.delete(&ct, "accessories").unwrap();
    am.commit();

    assert!(doc.upgrade(T0 + 2).unwrap());
    doc.record_unit_event(
        event("e1", "CT-1", status(UnitStatus::Functioning), ""),
        &who("anna"),
        T0 + 3,
    )
    .unwrap();
    assert_eq!(doc.read().unwrap().schema, 4);
}

#[test]
fn only_a_coordinator_hands_over_and_only_receivers_record_other_steps() {
    let handover = || UnitStep::HandedOver {
        on: "2026-12-20".into(),
        asset_number: "KRH-2026-0042".into(),
    };
    // Only an accepted unit is handed over: refused where it is recorded.
    let mut early = shipment();
    let refused = early.record_unit_event(event("h0", "CT-1", handover(), ""), &who("olena"), T0);
    assert!(
        matches!(&refused, Err(ModelError::Invalid { reason, .. }) if reason.contains("only an accepted unit")),
        "{refused:?}"
    );
    let mut server = shipment();
    server
        .record_unit_event(
            event(
                "t1",
                "CT-1",
                UnitStep::AcceptanceTest {
                    result: TestResult::NotApplicable,
                    on: "2026-12-19".into(),
                },
                "",
            ),
            &who("anna"),
            T0,
        )
        .unwrap();
    let upload = |user: &str, role: Role, step: UnitStep| {
        let mut phone = server.clone();
        let actor = ActorId::random();
        phone.set_actor(actor.clone());
        phone
            .record_unit_event(event("h1", "CT-1", step, ""), &who(user), T0 + 1)
            .unwrap();
        let uploader = Uploader::single_device(&who(user), role, actor);
        let changes = phone.automerge_mut().get_changes(&server.clone().heads());
        merge_upload(&server, changes, &uploader)
    };
    let err = upload("anna", Role::Receiver, handover()).unwrap_err();
    assert!(
        matches!(err, Refusal::Forbidden(Forbidden::Role { .. })),
        "{err}"
    );
    let merged = upload("olena", Role::Coordinator, handover()).unwrap();
    let ct1 = merged.shipment.units().into_iter().next().unwrap();
    assert!(ct1.handed_over());

    let err = upload("olena", Role::Coordinator, status(UnitStatus::Functioning)).unwrap_err();
    assert!(
        matches!(err, Refusal::Forbidden(Forbidden::Role { .. })),
        "{err}"
    );
    upload("anna", Role::Receiver, status(UnitStatus::Functioning)).unwrap();

    // Recorded in another person's name: refused.
    let mut phone = server.clone();
    let actor = ActorId::random();
    phone.set_actor(actor.clone());
    phone
        .record_unit_event(
            event("h2", "CT-1", status(UnitStatus::Functioning), ""),
            &who("bohdan"),
            T0 + 1,
        )
        .unwrap();
    let uploader = Uploader::single_device(&who("anna"), Role::Receiver, actor);
    let changes = phone.automerge_mut().get_changes(&server.clone().heads());
    let err = merge_upload(&server, changes, &uploader).unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::Forbidden(Forbidden::UnitEventOfAnotherUser { .. })
        ),
        "{err}"
    );
}

#[test]
fn records_that_supersede_each_other_in_a_circle_are_refused() {
    let mut doc = shipment();
    let anna = who("anna");
    for id in ["c1", "c2"] {
        doc.record_unit_event(
            event(id, "CT-1", status(UnitStatus::Functioning), ""),
            &anna,
            T0 + 1,
        )
        .unwrap();
    }
    assert!(read_shipment(doc.automerge()).is_ok(), "c2 supersedes c1");
    // Forged: c1 now supersedes c2 too, so neither would be current.
    let am = doc.automerge_mut();
    let (_, events) = am.get(ROOT, "unit_events").unwrap().unwrap();
    let (_, c1) = am.get(&events, "c1").unwrap().unwrap();
    let (_, list) = am.get(&c1, "supersedes").unwrap().unwrap();
    am.insert(&list, 0, "c2").unwrap();
    am.commit();
    let err = read_shipment(doc.automerge()).unwrap_err();
    assert!(err.to_string().contains("circle"), "{err}");
}
