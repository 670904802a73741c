//! Who may change what: `roles::check_edit` on real documents, through the
//! server's merge step. Each refusal names the rule a person broke.

#![allow(clippy::unwrap_used)]

use automerge::{ActorId, Change};

use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ReviewId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewReview, NewShipment, Reason, Recorder, ShipmentDoc,
};
use aidsync_shared::roles::{Action, Forbidden, Role};
use aidsync_shared::sync::server::{Refusal, Uploader, merge_upload};

const T0: i64 = 1_790_000_000_000;

/// One person on one device, and their replica of the shipment.
struct Person {
    doc: ShipmentDoc,
    who: Recorder,
    uploader: Uploader,
}

fn person(server: &ShipmentDoc, user: &str, role: Role) -> Person {
    let actor = ActorId::random();
    let mut doc = server.clone();
    doc.set_actor(actor.clone());
    let who = Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    };
    let uploader = Uploader::single_device(&who, role, actor);
    Person { doc, who, uploader }
}

fn server() -> ShipmentDoc {
    let new = NewShipment {
        id: ShipmentId::parse("jica-perm-1").unwrap(),
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

fn receipt(id: &str) -> NewReceipt {
    NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse("us").unwrap(),
        quantity: 1,
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

fn review(id: &str) -> NewReview {
    NewReview {
        id: ReviewId::parse(id).unwrap(),
        note: "checked".into(),
        verdict: None,
        resolves: Vec::new(),
    }
}

/// What `p` changed since `server`, uploaded as `p`.
fn upload(server: &ShipmentDoc, p: &mut Person) -> Result<ShipmentDoc, Refusal> {
    let mut server_am = server.clone();
    let changes: Vec<Change> = p
        .doc
        .automerge_mut()
        .get_changes(&server_am.heads())
        .into_iter()
        .collect();
    merge_upload(server, changes, &p.uploader).map(|m| m.doc)
}

fn forbidden(result: Result<ShipmentDoc, Refusal>) -> Forbidden {
    match result {
        Err(Refusal::Forbidden(f)) => f,
        Err(other) => panic!("expected a permission refusal, got {other}"),
        Ok(_) => panic!("expected a permission refusal, got acceptance"),
    }
}

#[test]
fn each_role_may_do_its_own_work_only() {
    let server = server();
    let mut anna = person(&server, "anna", Role::Receiver);
    anna.doc
        .record_receipt(receipt("r1"), &anna.who, T0 + 1)
        .unwrap();
    let server = upload(&server, &mut anna).unwrap();

    let mut olena = person(&server, "olena", Role::Coordinator);
    olena
        .doc
        .add_review(review("rv1"), &olena.who.user, T0 + 2)
        .unwrap();
    olena.doc.set_note("checked at the gate", T0 + 3).unwrap();
    let server = upload(&server, &mut olena).unwrap();
    assert_eq!(server.read().unwrap().reviews.len(), 1);

    // A receiver writing a review, a coordinator counting boxes, an admin
    // doing either: each refused with the action named.
    let mut anna = person(&server, "anna", Role::Receiver);
    anna.doc
        .add_review(review("rv2"), &anna.who.user, T0 + 4)
        .unwrap();
    assert_eq!(
        forbidden(upload(&server, &mut anna)),
        Forbidden::Role {
            role: Role::Receiver,
            action: Action::WriteReviews
        }
    );
    let mut olena = person(&server, "olena", Role::Coordinator);
    olena
        .doc
        .record_receipt(receipt("r2"), &olena.who, T0 + 5)
        .unwrap();
    assert_eq!(
        forbidden(upload(&server, &mut olena)),
        Forbidden::Role {
            role: Role::Coordinator,
            action: Action::RecordReceipts
        }
    );
    let mut admin = person(&server, "root", Role::Admin);
    admin.doc.set_note("admin was here", T0 + 6).unwrap();
    assert_eq!(
        forbidden(upload(&server, &mut admin)),
        Forbidden::Role {
            role: Role::Admin,
            action: Action::ManageShipments
        }
    );
    let mut admin = person(&server, "root", Role::Admin);
    admin
        .doc
        .add_line(
            &Line {
                id: LineId::parse("extra").unwrap(),
                item: "Extra".into(),
                category: "imaging".into(),
                unit: "unit".into(),
                quantity_expected: 1,
                serials_expected: Vec::new(),
                accessories: Vec::new(),
                unit_value: None,
            },
            T0 + 7,
        )
        .unwrap();
    assert!(matches!(
        forbidden(upload(&server, &mut admin)),
        Forbidden::Role {
            action: Action::ManageShipments,
            ..
        }
    ));
}

#[test]
fn records_must_name_their_sender() {
    let server = server();
    let mut anna = person(&server, "anna", Role::Receiver);
    let bohdan = person(&server, "bohdan", Role::Receiver);
    anna.doc
        .record_receipt(receipt("r1"), &bohdan.who, T0 + 1)
        .unwrap();
    let refusal = forbidden(upload(&server, &mut anna));
    assert_eq!(
        refusal.to_string(),
        "receipt r1 claims to be recorded by bohdan, but the sender is anna"
    );

    let mut anna = person(&server, "anna", Role::Receiver);
    let who = Recorder {
        user: anna.who.user.clone(),
        device: bohdan.who.device.clone(),
    };
    anna.doc
        .record_receipt(receipt("r1"), &who, T0 + 1)
        .unwrap();
    assert!(matches!(
        forbidden(upload(&server, &mut anna)),
        Forbidden::ReceiptOfAnotherDevice { .. }
    ));

    let mut olena = person(&server, "olena", Role::Coordinator);
    let impostor = UserId::parse("mykola").unwrap();
    olena
        .doc
        .add_review(review("rv1"), &impostor, T0 + 2)
        .unwrap();
    assert!(matches!(
        forbidden(upload(&server, &mut olena)),
        Forbidden::ReviewOfAnotherUser { .. }
    ));
}

/// A receiver's concurrent write to the note may lose last-writer-wins and
/// change no visible value, but it still shows as a conflict: refused all
/// the same, whichever write wins.
#[test]
fn a_losing_concurrent_header_write_is_still_an_edit() {
    for attempt in 0..8 {
        let base = server();
        let mut olena = person(&base, "olena", Role::Coordinator);
        let mut anna = person(&base, "anna", Role::Receiver);
        olena.doc.set_note("coordinator's note", T0 + 1).unwrap();
        anna.doc.set_note("receiver's note", T0 + 1).unwrap();
        let server = upload(&base, &mut olena).unwrap();
        assert!(
            matches!(
                forbidden(upload(&server, &mut anna)),
                Forbidden::Role {
                    role: Role::Receiver,
                    ..
                }
            ),
            "attempt {attempt}"
        );
    }
}

#[test]
fn a_colleagues_change_carried_along_is_skipped_but_a_strangers_refuses_the_upload() {
    let server = server();
    let mut anna = person(&server, "anna", Role::Receiver);
    anna.doc
        .record_receipt(receipt("r1"), &anna.who, T0 + 1)
        .unwrap();
    // Bohdan received Anna's receipt, then recorded his own; the server
    // (restored from a backup) has neither.
    let mut bohdan = person(&server, "bohdan", Role::Receiver);
    let mut from_anna = anna.doc.clone();
    bohdan
        .doc
        .automerge_mut()
        .merge(from_anna.automerge_mut())
        .unwrap();
    bohdan
        .doc
        .record_receipt(receipt("r2"), &bohdan.who, T0 + 2)
        .unwrap();
    let mut server_am = server.clone();
    let carried: Vec<Change> = bohdan
        .doc
        .automerge_mut()
        .get_changes(&server_am.heads())
        .into_iter()
        .collect();
    assert_eq!(carried.len(), 2);

    // Anna's actor unknown to the server: the whole upload is refused.
    assert!(matches!(
        merge_upload(&server, carried.clone(), &bohdan.uploader),
        Err(Refusal::WrongActor { .. })
    ));
    // Known (another person's device): skipped; Bohdan's own receipt
    // depends on hers, so it waits for Anna to re-send it.
    let mut relaying = bohdan.uploader.clone();
    relaying
        .relayed
        .insert(anna.uploader.actors.iter().next().unwrap().clone());
    assert!(matches!(
        merge_upload(&server, carried, &relaying),
        Err(Refusal::MissingDependencies { .. })
    ));
    // Once Anna's own upload is in, Bohdan's goes through, storing only his.
    let with_anna = upload(&server, &mut anna).unwrap();
    let carried: Vec<Change> = bohdan
        .doc
        .automerge_mut()
        .get_changes(&server_am.heads())
        .into_iter()
        .collect();
    let merged = merge_upload(&with_anna, carried, &relaying).unwrap();
    assert_eq!(merged.new_changes.len(), 1);
    assert_eq!(
        merged.new_changes[0].actor_id(),
        &bohdan.doc.automerge().get_actor().clone()
    );
    assert_eq!(merged.shipment.receipts.len(), 2);
}
