//! What the server accepts from a phone's bytes: real receipts as plain
//! change chunks, within an operation budget, that continue the document's
//! history as automerge would have written it; nothing else.

#![allow(clippy::unwrap_used)]

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType};
use automerge::{ActorId, Change, ExpandedChange, ObjType};
use serde_bytes::ByteBuf;

use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewShipment, Reason, Recorder, ShipmentDoc,
};
use aidsync_shared::roles::Role;
use aidsync_shared::sync::lineage::{LineageError, check_lineage};
use aidsync_shared::sync::protocol::{self, Changes, SyncRequest};
use aidsync_shared::sync::server::{Refusal, Uploader, merge_upload};
use aidsync_shared::sync::untrusted::{OpBudget, UntrustedError, decode_untrusted};

const T0: i64 = 1_790_000_000_000;

/// A shipment and the changes of `receipts` receipts recorded on a phone.
fn receipts(receipts: usize) -> (ShipmentDoc, Vec<Change>) {
    let new = NewShipment {
        id: ShipmentId::parse("jica-guard-1").unwrap(),
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
            quantity_expected: 400,
            serials_expected: Vec::new(),
            accessories: Vec::new(),
            unit_value: None,
        }],
    };
    let olena = UserId::parse("olena").unwrap();
    let mut server = ShipmentDoc::create(&new, &olena, ActorId::random(), T0).unwrap();
    let mut phone = server.clone();
    phone.set_actor(ActorId::random());
    let anna = Recorder {
        user: UserId::parse("anna").unwrap(),
        device: DeviceId::parse("anna-phone").unwrap(),
    };
    for i in 0..receipts {
        let receipt = NewReceipt {
            id: ReceiptId::parse(format!("r{i}")).unwrap(),
            line_id: LineId::parse("us").unwrap(),
            quantity: 1,
            condition: Condition::Damaged,
            serials: vec![format!("US-{i:05}")],
            note: "crate dented on one side; ".repeat(12),
            voids: None,
            stage: None,
            // Any reason meets the model\'s rule on short, over or damaged
            // counts; these receipts are about something else.
            reason: Some(Reason::Short),
            delivery_id: None,
        };
        phone.record_receipt(receipt, &anna, T0 + i as i64).unwrap();
    }
    let changes = phone.automerge_mut().get_changes(&server.heads());
    (server, changes)
}

fn chunks(bytes: Vec<Vec<u8>>) -> Changes {
    Changes::Chunks(bytes.into_iter().map(ByteBuf::from).collect())
}

fn malformed(result: Result<Vec<Change>, UntrustedError>) -> String {
    match result {
        Err(UntrustedError::Malformed { reason, .. }) => reason,
        other => panic!("expected a malformed refusal, got {other:?}"),
    }
}

#[test]
fn real_receipts_decode_to_the_same_changes_and_cost_a_few_dozen_ops_each() {
    let (_, changes) = receipts(20);
    let mut budget = OpBudget::new(1_000_000);
    let decoded = decode_untrusted(&Changes::chunks(&changes), &mut budget).unwrap();
    let hashes = |cs: &[Change]| cs.iter().map(Change::hash).collect::<Vec<_>>();
    assert_eq!(hashes(&decoded), hashes(&changes));
    let charged = 1_000_000 - budget.left();
    let ops: u64 = changes.iter().map(|c| c.len() as u64).sum();
    // The walk's bound covers what automerge will decode, and stays close
    // to it: a budget in operations means what it says.
    assert!(charged >= ops, "charged {charged} for {ops} ops");
    assert!(charged <= 3 * ops, "charged {charged} for {ops} ops");
    assert!(charged / 20 < 60, "{} per receipt", charged / 20);
}

#[test]
fn the_budget_is_shared_by_every_document_of_a_request() {
    let (_, changes) = receipts(10);
    let upload = Changes::chunks(&changes);
    let mut probe = OpBudget::new(u64::MAX);
    decode_untrusted(&upload, &mut probe).unwrap();
    let cost = u64::MAX - probe.left();

    let mut budget = OpBudget::new(cost + cost / 2);
    assert!(decode_untrusted(&upload, &mut budget).is_ok());
    assert_eq!(
        decode_untrusted(&upload, &mut budget).unwrap_err(),
        UntrustedError::OverBudget
    );
}

#[test]
fn bundles_compressed_chunks_and_other_chunk_types_are_refused() {
    let (mut server, changes) = receipts(3);
    // Refused unread, whatever the bytes: the fixtures in
    // server/tests/fixtures are real bundles that once crashed the server.
    let bundle = Changes::Bundle(ByteBuf::from(changes[0].raw_bytes().to_vec()));
    let mut budget = OpBudget::new(1_000_000);
    assert_eq!(
        decode_untrusted(&bundle, &mut budget).unwrap_err(),
        UntrustedError::Bundle
    );

    // automerge deflates a change chunk over 256 bytes when asked for its
    // stored form; the inflated size is what a body limit cannot bound.
    let mut big = changes
        .iter()
        .max_by_key(|c| c.raw_bytes().len())
        .cloned()
        .unwrap();
    let deflated = big.bytes().to_vec();
    assert_eq!(
        deflated[8],
        2,
        "expected a compressed chunk: {} raw bytes, {:?}",
        big.raw_bytes().len(),
        &deflated[..12]
    );
    assert!(
        malformed(decode_untrusted(&chunks(vec![deflated]), &mut budget)).contains("uncompressed")
    );

    let document = server.save();
    assert!(
        malformed(decode_untrusted(&chunks(vec![document]), &mut budget)).contains("uncompressed")
    );
}

#[test]
fn a_wrong_checksum_or_trailing_bytes_are_refused() {
    let (_, changes) = receipts(1);
    let good = changes[0].raw_bytes().to_vec();
    let mut budget = OpBudget::new(1_000_000);

    let mut bad_sum = good.clone();
    bad_sum[5] ^= 0xff;
    assert!(malformed(decode_untrusted(&chunks(vec![bad_sum]), &mut budget)).contains("checksum"));

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(malformed(decode_untrusted(&chunks(vec![trailing]), &mut budget)).contains("after"));

    let truncated = good[..good.len() - 3].to_vec();
    malformed(decode_untrusted(&chunks(vec![truncated]), &mut budget));
    assert!(decode_untrusted(&chunks(vec![good]), &mut budget).is_ok());
}

/// A change chunk with one column holding `column`, and nothing else.
fn chunk_with_column(spec: u8, column: &[u8]) -> Vec<u8> {
    chunk(1, spec, column, &[])
}

/// A change chunk with start op `start_op`, one column, and `extra` bytes
/// after it. Its actor is one byte; it names no other actors.
fn chunk(start_op: u8, spec: u8, column: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut data = vec![
        0, // no dependencies
        1, 7, // a one-byte actor id
        1, // seq
        start_op, 0, // time
        0, // no message
        0, // no other actors
        1, // one column
        spec,
    ];
    data.push(u8::try_from(column.len()).unwrap());
    data.extend_from_slice(column);
    data.extend_from_slice(extra);
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
    chunk.push(u8::try_from(data.len()).unwrap());
    chunk.extend(data);
    chunk
}

#[test]
fn values_automerge_would_panic_on_are_refused_first() {
    let mut budget = OpBudget::new(200_000);
    let mut refused =
        |bytes: Vec<u8>| malformed(decode_untrusted(&chunks(vec![bytes]), &mut budget));
    // An obj-actor column (id 0, actor type: spec 0x01) naming actor 1 of
    // a change that has only actor 0.
    assert!(refused(chunk(1, 0x01, &[0x01, 0x01], &[])).contains("actor index"));
    // A delta column (key counter, id 1: spec 0x13) running below zero...
    assert!(refused(chunk(1, 0x13, &[0x01, 0x7f], &[])).contains("counter"));
    // ...or past 2^32 in one repeated step: 2 x 2^31.
    let run = [0x02, 0x80, 0x80, 0x80, 0x80, 0x08];
    assert!(refused(chunk(1, 0x13, &run, &[])).contains("counter"));
    // Extra bytes: automerge reads them as an author footer it polices by
    // panicking; phones write none.
    assert!(refused(chunk(1, 0x42, &[0x01, 0x01], &[0x00])).contains("extra bytes"));
    // A start op of 0.
    assert!(refused(chunk(0, 0x42, &[0x01, 0x01], &[])).contains("start op"));
}

#[test]
fn a_few_bytes_declaring_billions_of_operations_cost_nothing() {
    // A run of 2^40 copies of one value, as an integer column (the action
    // column's type, id 4: spec 0x42) and as a group column (an op's
    // predecessors, spec 0x70).
    let run = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x01];
    let mut budget = OpBudget::new(200_000);
    for spec in [0x42, 0x70] {
        let result = decode_untrusted(&chunks(vec![chunk_with_column(spec, &run)]), &mut budget);
        assert_eq!(result.unwrap_err(), UntrustedError::OverBudget);
    }
    // Under the walk's absolute cap but over the request's budget.
    let run = [0x80, 0x80, 0x80, 0x80, 0x01, 0x01];
    let result = decode_untrusted(&chunks(vec![chunk_with_column(0x42, &run)]), &mut budget);
    assert_eq!(result.unwrap_err(), UntrustedError::OverBudget);
    // A group of 1,000 rows each naming 2^30 predecessors: few rows, an
    // enormous sum.
    let group = [0xe8, 0x07, 0x80, 0x80, 0x80, 0x80, 0x04];
    let result = decode_untrusted(&chunks(vec![chunk_with_column(0x70, &group)]), &mut budget);
    assert_eq!(result.unwrap_err(), UntrustedError::OverBudget);
    assert_eq!(budget.left(), 200_000, "a refusal charges nothing");
}

/// A sync request `aidsync-fuzz` saved: hex, after `#` comment lines.
fn saved_request(path: &std::path::Path) -> SyncRequest {
    let text = std::fs::read_to_string(path).unwrap();
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.trim().chars())
        .collect();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    protocol::decode(&bytes).unwrap()
}

/// Requests `aidsync-fuzz` found to panic automerge (one per panic site, in
/// `tests/fuzz-regressions/automerge/`): the walk refuses every one that
/// one change alone gives away. The rest need the document (a seq that
/// skips, a map key written into a list, an op overwriting another place,
/// a list element of another list, a table): `lineage` refuses those, which
/// tests/tests/fuzz_regressions.rs checks through the server's sync path.
#[test]
fn fuzz_regressions_are_refused_before_automerge_sees_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("fuzz-regressions")
        .join("automerge");
    let mut passed = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // Whole HTTP requests are replayed by tests/tests/fuzz_regressions.rs.
        if std::fs::read_to_string(&path)
            .unwrap()
            .contains("target=http")
        {
            continue;
        }
        let request = saved_request(&path);
        let mut budget = OpBudget::new(200_000);
        let refused = request
            .docs
            .iter()
            .any(|d| decode_untrusted(&d.changes, &mut budget).is_err());
        if !refused {
            passed.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        seen += 1;
    }
    passed.sort();
    assert!(seen >= 10, "only {seen} regression inputs found");
    assert_eq!(
        passed,
        [
            "automerge-change_graph-569--chunks-seed1-case73.hex",
            "automerge-op_set2-change-batch-136-element-of-another-list--chunks-seed1-case1089757.hex",
            "automerge-op_set2-change-batch-920-table--chunks-seed1-case619831.hex",
            "automerge-op_set2-change-collector-299--chunks-seed1-case23544.hex",
            "automerge-op_set2-change-collector-299-pred-elsewhere--chunks-seed1-case416018.hex",
        ]
    );
}

/// Bytes automerge would not have written itself (equal values as literals
/// instead of one run) decode, but come back from automerge re-encoded
/// under another hash: refused, or server and phones disagree on history.
#[test]
fn a_change_not_in_automerges_own_encoding_is_refused() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz-regressions/accepted")
        .join("noncanonical-rle-accepted-in-release--chunks-seed1-case451.hex");
    let request = saved_request(&path);
    let reasons: Vec<String> = request
        .docs
        .iter()
        .filter_map(|d| decode_untrusted(&d.changes, &mut OpBudget::new(200_000)).err())
        .map(|e| e.to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("automerge's own encoding")),
        "{reasons:?}"
    );
}

/// The phone's change re-encoded after `edit`, as a forger would write it.
fn forge(change: &Change, edit: impl FnOnce(&mut ExpandedChange)) -> Change {
    let mut expanded = change.decode();
    edit(&mut expanded);
    expanded.hash = None;
    Change::from(expanded)
}

/// What the server's merge says of `changes` from the phone's user.
fn merged(server: &ShipmentDoc, changes: Vec<Change>) -> Result<(), Refusal> {
    let anna = Recorder {
        user: UserId::parse("anna").unwrap(),
        device: DeviceId::parse("anna-phone").unwrap(),
    };
    let actor = changes[0].actor_id().clone();
    let uploader = Uploader::single_device(&anna, Role::Receiver, actor);
    merge_upload(server, changes, &uploader).map(|_| ())
}

fn lineage(server: &ShipmentDoc, changes: &[Change]) -> Result<(), LineageError> {
    let mut doc = server.clone();
    check_lineage(doc.automerge_mut().document(), changes)
}

/// Index of the first op of `change` matching `pred`.
fn op_index(change: &ExpandedChange, pred: impl Fn(&Op) -> bool) -> usize {
    change.operations.iter().position(pred).unwrap()
}

fn op_id(change: &ExpandedChange, index: usize) -> OpId {
    OpId(
        change.start_op.get() + index as u64,
        change.actor_id.clone(),
    )
}

#[test]
fn a_phones_real_changes_continue_the_history_in_any_order() {
    let (server, changes) = receipts(4);
    assert_eq!(lineage(&server, &changes), Ok(()));
    let reversed: Vec<Change> = changes.iter().rev().cloned().collect();
    assert_eq!(lineage(&server, &reversed), Ok(()));
    assert_eq!(merged(&server, reversed), Ok(()));
}

/// aidsync-fuzz found a change with seq 3 and no dependencies: it merged in
/// the order uploaded, then panicked automerge when the shipment was
/// reloaded from its snapshot and stored changes, a 500 on every later sync.
#[test]
fn a_change_that_does_not_follow_its_actors_previous_change_is_refused() {
    let (server, changes) = receipts(3);
    let orphan = forge(&changes[2], |c| c.deps.clear());
    let upload = vec![changes[0].clone(), changes[1].clone(), orphan];
    assert!(matches!(
        lineage(&server, &upload),
        Err(LineageError::SeqSkipped { seq: 3, .. })
    ));
    let refusal = merged(&server, upload).unwrap_err();
    assert!(
        matches!(&refusal, Refusal::Corrupt { reason } if reason.contains("seq 3")),
        "{refusal:?}"
    );

    let skipping = forge(&changes[2], |c| c.deps = vec![changes[0].hash()]);
    assert!(matches!(
        lineage(&server, &[changes[0].clone(), skipping]),
        Err(LineageError::SeqSkipped { seq: 3, .. })
    ));
}

#[test]
fn two_changes_with_one_seq_or_overlapping_op_ids_are_refused() {
    let (server, changes) = receipts(2);
    let twin = forge(&changes[0], |c| c.time += 1);
    assert!(matches!(
        lineage(&server, &[changes[0].clone(), twin]),
        Err(LineageError::SeqTaken { seq: 1, .. })
    ));
    let overlapping = forge(&changes[1], |c| c.start_op = changes[0].start_op());
    assert!(matches!(
        lineage(&server, &[changes[0].clone(), overlapping]),
        Err(LineageError::OpsOverlap { .. })
    ));
}

#[test]
fn an_op_must_refer_to_what_its_change_can_see() {
    let (server, changes) = receipts(1);
    let unknown_op = forge(&changes[0], |c| {
        let i = op_index(c, |op| op.key == Key::Map("note".into()));
        c.operations[i].obj = ObjectId::Id(OpId(9_999, c.actor_id.clone()));
    });
    assert!(matches!(
        lineage(&server, &[unknown_op]),
        Err(LineageError::UnknownOp { .. })
    ));

    let unknown_actor = forge(&changes[0], |c| {
        let i = op_index(c, |op| op.key == Key::Map("note".into()));
        c.operations[i].obj = ObjectId::Id(OpId(1, ActorId::random()));
    });
    assert!(matches!(
        lineage(&server, &[unknown_actor]),
        Err(LineageError::UnknownActor { .. })
    ));

    // Writing into a plain value (the receipt's line id), not an object.
    let into_value = forge(&changes[0], |c| {
        let line_id = op_index(c, |op| op.key == Key::Map("line_id".into()));
        let i = op_index(c, |op| op.key == Key::Map("note".into()));
        c.operations[i].obj = ObjectId::Id(op_id(c, line_id));
    });
    assert!(matches!(
        lineage(&server, &[into_value]),
        Err(LineageError::NotAnObject { .. })
    ));

    // A map key written into the serials list: automerge lost the op's
    // place and panicked (aidsync-fuzz, chunks seed 7 case 2610).
    let key_into_list = forge(&changes[0], |c| {
        let list = op_index(c, |op| matches!(op.action, OpType::Make(ObjType::List)));
        let i = op_index(c, |op| op.key == Key::Map("note".into()));
        c.operations[i].obj = ObjectId::Id(op_id(c, list));
    });
    assert!(matches!(
        lineage(&server, &[key_into_list]),
        Err(LineageError::KeyMismatch { .. })
    ));
}

/// An op may overwrite only what is at its own place (aidsync-fuzz, chunks
/// seed 1 case 416018: automerge panicked collecting such a change), and a
/// table, which automerge 0.12 cannot apply writes into, is refused (case
/// 619831).
#[test]
fn an_op_overwriting_another_place_or_a_table_is_refused() {
    let (server, changes) = receipts(2);
    let first = changes[0].decode();
    let first_note = op_id(
        &first,
        op_index(&first, |op| op.key == Key::Map("note".into())),
    );
    let elsewhere = forge(&changes[1], |c| {
        let i = op_index(c, |op| op.key == Key::Map("note".into()));
        c.operations[i].pred = vec![first_note.clone()].into();
    });
    assert!(matches!(
        lineage(&server, &[changes[0].clone(), elsewhere]),
        Err(LineageError::PredMismatch { .. })
    ));

    let table = forge(&changes[0], |c| {
        let i = op_index(c, |op| matches!(op.action, OpType::Make(ObjType::Map)));
        c.operations[i].action = OpType::Make(ObjType::Table);
    });
    assert!(matches!(
        lineage(&server, &[table]),
        Err(LineageError::Table { .. })
    ));
}
