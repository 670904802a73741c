//! The seeds of the sync targets: real shipment documents as the server
//! holds them, and the uploads real clients make to them, built with the
//! model's own writers from fixed actor ids and times so every byte is the
//! same on every run.
//!
//! Three documents, each with the person whose uploads it receives:
//!
//! - `fz-receipts` (Anna, a receiver with two phones): single receipts with
//!   serials and notes, a chain of three, a void, concurrent receipts from
//!   both phones, a retry that repeats changes the server has, one signed
//!   by Petro's phone (wrong actor) and one whose dependency never came
//!   (missing dependencies).
//! - `fz-review` (Olena, a coordinator with a laptop and a phone): a review
//!   settling a receipt, note and date edits, a new line, concurrent notes.
//! - `fz-bulk` (Anna): thirty receipts in a row, one with fifty serials.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use automerge::{ActorId, Change};

use aidsync_server::service::Limits;
use aidsync_shared::ids::{FacilityId, LineId, ReceiptId, ReviewId, ShipmentId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewReview, NewShipment, NewUnitEvent, Recorder, ShipmentDoc,
    TestResult, UnitStatus, UnitStep, Verdict,
};
use aidsync_shared::roles::{Editor, Role};
use aidsync_shared::sync::protocol::Changes;
use aidsync_shared::sync::server::Uploader;

/// The time every seed change carries (milliseconds since the epoch).
pub const T0: i64 = 1_790_000_000_000;

/// A document as the server holds it, and who uploads to it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub doc: ShipmentDoc,
    pub uploader: Uploader,
    /// Its size as stored, for the `--max-document-bytes` check.
    pub stored_bytes: usize,
}

/// One document's upload: the raw change chunks a phone would send.
#[derive(Debug, Clone)]
pub struct Seed {
    pub doc: String,
    pub chunks: Vec<Vec<u8>>,
}

/// Chunks and other automerge encodings to splice into uploads.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    /// Every change chunk of every seed and every stored document.
    pub chunks: Vec<Vec<u8>>,
    /// Bundles of real changes (refused unread in uploads).
    pub bundles: Vec<Vec<u8>>,
    /// Deflated change chunks and whole saved documents.
    pub other_chunks: Vec<Vec<u8>>,
}

/// What the sync targets run against: the server's documents, the seed
/// uploads, and the server's limits.
#[derive(Debug, Clone)]
pub struct SyncWorld {
    pub docs: BTreeMap<String, Stored>,
    pub seeds: Vec<Seed>,
    pub pool: Pool,
    pub limits: Limits,
}

fn actor(tag: u8) -> ActorId {
    ActorId::from(vec![0xa1, 0xd5, 0x00, tag, 0x11, 0x22, 0x33, 0x44])
}

fn id<T: std::str::FromStr>(s: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| anyhow::anyhow!("seed id {s}: {e}"))
}

struct Person {
    recorder: Recorder,
    actors: Vec<ActorId>,
}

impl Person {
    fn new(user: &str, device: &str, actors: &[u8]) -> anyhow::Result<Person> {
        Ok(Person {
            recorder: Recorder {
                user: id(user)?,
                device: id(device)?,
            },
            actors: actors.iter().map(|t| actor(*t)).collect(),
        })
    }

    fn on(&self, device: &str) -> anyhow::Result<Recorder> {
        Ok(Recorder {
            user: self.recorder.user.clone(),
            device: id(device)?,
        })
    }

    fn uploader(&self, role: Role, devices: &[&str]) -> anyhow::Result<Uploader> {
        Ok(Uploader {
            editor: Editor {
                user: self.recorder.user.clone(),
                role,
                devices: devices
                    .iter()
                    .map(|d| id(d))
                    .collect::<anyhow::Result<_>>()?,
            },
            actors: self.actors.iter().cloned().collect::<BTreeSet<_>>(),
            relayed: BTreeSet::new(),
        })
    }
}

fn line(id_: &str, item: &str, category: &str, qty: u64, serials: &[&str]) -> anyhow::Result<Line> {
    Ok(Line {
        id: id(id_)?,
        item: item.to_owned(),
        category: category.to_owned(),
        unit: "unit".to_owned(),
        quantity_expected: qty,
        serials_expected: serials.iter().map(|s| (*s).to_owned()).collect(),
        accessories: Vec::new(),
        unit_value: None,
    })
}

fn shipment(sid: &str, lines: Vec<Line>) -> anyhow::Result<NewShipment> {
    Ok(NewShipment {
        id: id::<ShipmentId>(sid)?,
        donor: "JICA".to_owned(),
        programme: "Emergency medical equipment".to_owned(),
        reference: "JICA-2026-001".to_owned(),
        destination_facility: id::<FacilityId>("kharkiv-regional")?,
        expected_on: Some("2026-02-15".to_owned()),
        note: "two pallets".to_owned(),
        lines,
    })
}

fn receipt(
    rid: &str,
    line_id: &str,
    quantity: u64,
    condition: Condition,
    serials: &[&str],
    note: &str,
) -> anyhow::Result<NewReceipt> {
    Ok(NewReceipt {
        id: id::<ReceiptId>(rid)?,
        line_id: id::<LineId>(line_id)?,
        quantity,
        condition,
        serials: serials.iter().map(|s| (*s).to_owned()).collect(),
        note: note.to_owned(),
        voids: None,
        stage: None,
        reason: None,
        delivery_id: None,
    })
}

/// The changes `edit` makes on a copy of `base` signed by `actor`.
fn edit_on(
    base: &ShipmentDoc,
    actor: &ActorId,
    edit: impl FnOnce(&mut ShipmentDoc) -> anyhow::Result<()>,
) -> anyhow::Result<(ShipmentDoc, Vec<Change>)> {
    let mut phone = base.clone();
    phone.set_actor(actor.clone());
    let before = phone.heads();
    edit(&mut phone)?;
    let changes = phone.automerge_mut().get_changes(&before);
    Ok((phone, changes))
}

fn apply(server: &mut ShipmentDoc, changes: &[Change]) -> anyhow::Result<()> {
    server
        .automerge_mut()
        .apply_changes(changes.iter().cloned())
        .context("applying seed changes")?;
    server.read().context("seed document is valid")?;
    Ok(())
}

fn raw(changes: &[Change]) -> Vec<Vec<u8>> {
    changes.iter().map(|c| c.raw_bytes().to_vec()).collect()
}

/// Builds the documents, the seed uploads and the splice pool.
pub fn world() -> anyhow::Result<SyncWorld> {
    let olena = Person::new("olena", "olena-laptop", &[0xc1, 0xc2])?;
    let anna = Person::new("anna", "anna-phone-1", &[0xa1, 0xa2])?;
    let petro = Person::new("petro", "petro-phone", &[0xb1])?;
    let anna_1 = anna.on("anna-phone-1")?;
    let anna_2 = anna.on("anna-phone-2")?;
    let anna_up = anna.uploader(Role::Receiver, &["anna-phone-1", "anna-phone-2"])?;
    let olena_up = olena.uploader(Role::Coordinator, &["olena-laptop", "olena-phone"])?;
    let (a1, a2, c1, c2) = (
        &anna.actors[0],
        &anna.actors[1],
        &olena.actors[0],
        &olena.actors[1],
    );
    let mut seeds = Vec::new();
    let mut pool = Pool::default();
    let mut docs = BTreeMap::new();
    let mut t = T0;
    let mut tick = || {
        t += 60_000;
        t
    };

    // fz-receipts: Anna's uploads.
    let new = shipment(
        "fz-receipts",
        vec![
            line(
                "us",
                "Portable ultrasound",
                "imaging",
                10,
                &[
                    "US-001", "US-002", "US-003", "US-004", "US-005", "US-006", "US-007", "US-008",
                    "US-009", "US-010",
                ],
            )?,
            line(
                "gloves",
                "Nitrile gloves, box of 100",
                "consumables",
                500,
                &[],
            )?,
        ],
    )?;
    let mut server = ShipmentDoc::create(&new, &olena.recorder.user, c1.clone(), T0)?;
    let (_, base) = edit_on(&server, a1, |d| {
        crate::record_as_asked(
            d,
            receipt(
                "r-base-1",
                "us",
                2,
                Condition::Good,
                &["US-001", "US-002"],
                "",
            )?,
            &anna_1,
            T0 + 1,
        )?;
        crate::record_as_asked(
            d,
            receipt(
                "r-base-2",
                "gloves",
                100,
                Condition::Damaged,
                &[],
                "wet boxes",
            )?,
            &anna_1,
            T0 + 2,
        )?;
        Ok(())
    })?;
    apply(&mut server, &base)?;
    pool.chunks.extend(raw(&base));
    let upload = |chunks: Vec<Vec<u8>>, seeds: &mut Vec<Seed>| {
        seeds.push(Seed {
            doc: "fz-receipts".to_owned(),
            chunks,
        })
    };
    let (_, one) = edit_on(&server, a1, |d| {
        crate::record_as_asked(
            d,
            receipt(
                "r-1",
                "us",
                1,
                Condition::MissingParts,
                &["US-003"],
                "probe cable missing",
            )?,
            &anna_1,
            tick(),
        )?;
        Ok(())
    })?;
    upload(raw(&one), &mut seeds);
    let (_, chain) = edit_on(&server, a1, |d| {
        for (i, serial) in ["US-004", "US-005", "US-099"].iter().enumerate() {
            crate::record_as_asked(
                d,
                receipt(
                    &format!("r-chain-{i}"),
                    "us",
                    1,
                    Condition::Good,
                    &[serial],
                    "",
                )?,
                &anna_1,
                tick(),
            )?;
        }
        crate::record_as_asked(
            d,
            receipt("r-chain-gloves", "gloves", 400, Condition::Good, &[], "")?,
            &anna_1,
            tick(),
        )?;
        Ok(())
    })?;
    upload(raw(&chain), &mut seeds);
    let (_, void) = edit_on(&server, a1, |d| {
        let mut correction = receipt(
            "r-void-1",
            "gloves",
            90,
            Condition::Damaged,
            &[],
            "recounted",
        )?;
        correction.voids = Some(id("r-base-2")?);
        crate::record_as_asked(d, correction, &anna_1, tick())?;
        let mut cancel = receipt("r-void-2", "us", 0, Condition::Good, &[], "")?;
        cancel.voids = Some(id("r-base-1")?);
        crate::record_as_asked(d, cancel, &anna_1, tick())?;
        Ok(())
    })?;
    upload(raw(&void), &mut seeds);
    // Steps after receipt, as a phone records them offline: every kind of
    // unit event, one superseding another, so mutations reach their reader.
    let (_, steps) = edit_on(&server, a1, |d| {
        let unit = |event: &str,
                    serial: &str,
                    step: UnitStep,
                    note: &str|
         -> anyhow::Result<NewUnitEvent> {
            Ok(NewUnitEvent {
                id: id(event)?,
                line_id: id("us")?,
                serial: serial.to_owned(),
                step,
                note: note.to_owned(),
            })
        };
        let on = || "2026-11-03".to_owned();
        for new in [
            unit(
                "u-check",
                "US-001",
                UnitStep::Checklist {
                    checked: vec!["Linear probe".into()],
                },
                "",
            )?,
            unit(
                "u-inst",
                "US-001",
                UnitStep::Installed {
                    on: on(),
                    installer: "Medservice".into(),
                },
                "",
            )?,
            unit("u-comm", "US-001", UnitStep::Commissioned { on: on() }, "")?,
            unit(
                "u-test",
                "US-001",
                UnitStep::AcceptanceTest {
                    result: TestResult::Passed,
                    on: on(),
                },
                "",
            )?,
            unit(
                "u-train",
                "US-001",
                UnitStep::Training {
                    on: on(),
                    people: 4,
                    trainer: "Dr Koval".into(),
                },
                "",
            )?,
            unit(
                "u-warr",
                "US-001",
                UnitStep::Warranty {
                    starts_on: on(),
                    ends_on: "2028-11-03".into(),
                    service_agent: "Medservice".into(),
                },
                "",
            )?,
            unit(
                "u-loc",
                "US-001",
                UnitStep::Location {
                    department: "Radiology".into(),
                    room: "12".into(),
                    custodian: "Dr Shevchenko".into(),
                },
                "",
            )?,
            unit(
                "u-st-1",
                "US-002",
                UnitStep::Status {
                    status: UnitStatus::Functioning,
                },
                "",
            )?,
            unit(
                "u-st-2",
                "US-002",
                UnitStep::Status {
                    status: UnitStatus::AwaitingRepair,
                },
                "no power",
            )?,
        ] {
            d.record_unit_event(new, &anna_1, tick())?;
        }
        Ok(())
    })?;
    upload(raw(&steps), &mut seeds);
    let (_, first) = edit_on(&server, a1, |d| {
        crate::record_as_asked(
            d,
            receipt("r-p1", "us", 1, Condition::Good, &["US-006"], "")?,
            &anna_1,
            tick(),
        )?;
        Ok(())
    })?;
    let (_, second) = edit_on(&server, a2, |d| {
        crate::record_as_asked(
            d,
            receipt("r-p2", "us", 1, Condition::Good, &["US-006"], "same crate?")?,
            &anna_2,
            tick(),
        )?;
        Ok(())
    })?;
    upload([raw(&first), raw(&second)].concat(), &mut seeds);
    upload([raw(&base), raw(&one)].concat(), &mut seeds);
    let petro_1 = petro.recorder.clone();
    let (_, wrong) = edit_on(&server, &petro.actors[0], |d| {
        crate::record_as_asked(
            d,
            receipt("r-petro", "gloves", 5, Condition::Good, &[], "")?,
            &petro_1,
            tick(),
        )?;
        Ok(())
    })?;
    upload(raw(&wrong), &mut seeds);
    let (_, gap) = edit_on(&server, a2, |d| {
        crate::record_as_asked(
            d,
            receipt("r-gap-1", "gloves", 1, Condition::Good, &[], "")?,
            &anna_2,
            tick(),
        )?;
        crate::record_as_asked(
            d,
            receipt("r-gap-2", "gloves", 1, Condition::Good, &[], "")?,
            &anna_2,
            tick(),
        )?;
        Ok(())
    })?;
    upload(raw(&gap[1..]), &mut seeds);
    pool.chunks.extend(raw(&gap));
    docs.insert("fz-receipts".to_owned(), stored(server, anna_up.clone())?);

    // fz-review: Olena's uploads on a shipment Anna has received against.
    let new = shipment(
        "fz-review",
        vec![
            line("xray", "Mobile X-ray unit", "imaging", 2, &["XR-1", "XR-2"])?,
            line("masks", "FFP2 masks", "consumables", 1000, &[])?,
        ],
    )?;
    let mut server = ShipmentDoc::create(&new, &olena.recorder.user, c1.clone(), T0)?;
    let (_, base) = edit_on(&server, a1, |d| {
        crate::record_as_asked(
            d,
            receipt(
                "r-xr",
                "xray",
                1,
                Condition::Damaged,
                &["XR-1"],
                "cracked panel",
            )?,
            &anna_1,
            T0 + 5,
        )?;
        crate::record_as_asked(
            d,
            receipt("r-masks", "masks", 900, Condition::Good, &[], "")?,
            &anna_1,
            T0 + 6,
        )?;
        Ok(())
    })?;
    apply(&mut server, &base)?;
    pool.chunks.extend(raw(&base));
    let upload = |chunks: Vec<Vec<u8>>, seeds: &mut Vec<Seed>| {
        seeds.push(Seed {
            doc: "fz-review".to_owned(),
            chunks,
        })
    };
    let olena_user = olena.recorder.user.clone();
    let (_, review) = edit_on(&server, c1, |d| {
        d.add_review(
            NewReview {
                id: id::<ReviewId>("rv-1")?,
                note: "insurance claim filed".to_owned(),
                verdict: Some(Verdict::HasIssues),
                resolves: vec![id("r-xr")?],
            },
            &olena_user,
            tick(),
        )?;
        Ok(())
    })?;
    upload(raw(&review), &mut seeds);
    let (_, header) = edit_on(&server, c1, |d| {
        d.set_note("one pallet delayed at the border", tick())?;
        d.set_expected_on(Some("2026-03-01"), tick())?;
        d.add_line(
            &line(
                "spo2",
                "Pulse oximeter",
                "monitoring",
                20,
                &["OX-1", "OX-2"],
            )?,
            tick(),
        )?;
        Ok(())
    })?;
    upload(raw(&header), &mut seeds);
    let (_, note_a) = edit_on(&server, c1, |d| {
        d.set_note("laptop says", tick())?;
        d.set_expected_on(None, tick())?;
        Ok(())
    })?;
    let (_, note_b) = edit_on(&server, c2, |d| {
        d.set_note("phone says", tick())?;
        d.add_review(
            NewReview {
                id: id::<ReviewId>("rv-2")?,
                note: String::new(),
                verdict: Some(Verdict::Approved),
                resolves: Vec::new(),
            },
            &olena_user,
            tick(),
        )?;
        Ok(())
    })?;
    upload([raw(&note_a), raw(&note_b)].concat(), &mut seeds);
    docs.insert("fz-review".to_owned(), stored(server, olena_up)?);

    // fz-bulk: many receipts at once.
    let serials: Vec<String> = (0..60).map(|i| format!("BK-{i:04}")).collect();
    let serial_refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let new = shipment(
        "fz-bulk",
        vec![
            line("beds", "Hospital bed", "furniture", 60, &serial_refs)?,
            line("kits", "First aid kit", "consumables", 5000, &[])?,
        ],
    )?;
    let server = ShipmentDoc::create(&new, &olena.recorder.user, c1.clone(), T0)?;
    let (_, bulk) = edit_on(&server, a2, |d| {
        for i in 0..30 {
            crate::record_as_asked(
                d,
                receipt(
                    &format!("r-bulk-{i}"),
                    "kits",
                    1 + i,
                    if i % 5 == 0 {
                        Condition::Damaged
                    } else {
                        Condition::Good
                    },
                    &[],
                    &"box crushed; ".repeat(usize::try_from(i % 4)?),
                )?,
                &anna_2,
                tick(),
            )?;
        }
        crate::record_as_asked(
            d,
            receipt(
                "r-bulk-beds",
                "beds",
                50,
                Condition::Good,
                &serial_refs[..50],
                "",
            )?,
            &anna_2,
            tick(),
        )?;
        Ok(())
    })?;
    seeds.push(Seed {
        doc: "fz-bulk".to_owned(),
        chunks: raw(&bulk[..8]),
    });
    seeds.push(Seed {
        doc: "fz-bulk".to_owned(),
        chunks: raw(&bulk),
    });
    let (bulk_phone, _) = edit_on(&server, a2, |_| Ok(()))?;
    let mut bulk_phone = bulk_phone;
    bulk_phone
        .automerge_mut()
        .apply_changes(bulk.iter().cloned())
        .context("bulk phone")?;
    if let Changes::Bundle(b) = Changes::encode(bulk_phone.automerge(), &bulk) {
        pool.bundles.push(b.into_vec());
    }
    pool.other_chunks.push(bulk_phone.save());
    for change in bulk.iter().take(3) {
        let mut c = change.clone();
        pool.other_chunks.push(c.bytes().to_vec());
    }
    docs.insert("fz-bulk".to_owned(), stored(server, anna_up)?);

    for seed in &seeds {
        pool.chunks.extend(seed.chunks.iter().cloned());
    }
    Ok(SyncWorld {
        docs,
        seeds,
        pool,
        limits: Limits::default(),
    })
}

fn stored(mut doc: ShipmentDoc, uploader: Uploader) -> anyhow::Result<Stored> {
    doc.read().context("stored seed document is valid")?;
    let stored_bytes = doc.save().len();
    Ok(Stored {
        doc,
        uploader,
        stored_bytes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fuzz::sync::run;
    use aidsync_shared::sync::protocol::{DocUpload, SyncRequest, encode};

    fn request(doc: &str, chunks: &[Vec<u8>]) -> Vec<u8> {
        encode(&SyncRequest {
            protocol: 1,
            cursor: 0,
            docs: vec![DocUpload {
                id: id(doc).unwrap(),
                changes: Changes::Chunks(
                    chunks
                        .iter()
                        .map(|c| serde_bytes::ByteBuf::from(c.clone()))
                        .collect(),
                ),
            }],
        })
    }

    #[test]
    fn the_seeds_reach_every_verdict_of_the_merge() {
        let world = world().unwrap();
        let mut seen = BTreeSet::new();
        for seed in &world.seeds {
            let outcome = run(&world, &request(&seed.doc, &seed.chunks));
            assert!(outcome.server_error.is_none(), "{outcome:?}");
            seen.extend(outcome.results);
        }
        for want in ["accepted", "refused:wrong_actor", "missing_dependencies"] {
            assert!(seen.contains(want), "no seed is {want}: {seen:?}");
        }
    }

    #[test]
    fn the_world_is_the_same_on_every_build() {
        let a = world().unwrap();
        let b = world().unwrap();
        let bytes = |w: &SyncWorld| -> Vec<Vec<u8>> {
            w.seeds.iter().flat_map(|s| s.chunks.clone()).collect()
        };
        assert_eq!(bytes(&a), bytes(&b));
    }
}
