//! The demo data set: Government of Japan / JICA deliveries to hospitals in
//! Kharkiv region, with demo accounts, so a newcomer has something
//! real-looking to log in to and sync against.
//!
//! Seeding is idempotent: run `--demo` on every start and it adds only what
//! is missing. Demo accounts have printed passwords and each has a demo
//! device with a fixed token; never use `--demo` on a server that holds
//! real data.

use aidsync_shared::ids::{FacilityId, LineId, ReceiptId, ReviewId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewReview, NewShipment, Recorder, ShipmentDoc, Verdict,
};
use aidsync_shared::roles::Role;
use aidsync_shared::sync::protocol::{Changes, DocUpload, PROTOCOL_VERSION, SyncRequest};

use crate::caller::{Caller, token_hash};
use crate::error::AppError;
use crate::service::users::{self, NewUser};
use crate::service::{Limits, now_ms, shipments};
use crate::storage::{Db, DeviceRow, FacilityRow};

/// The region every demo facility is in.
pub const REGION: &str = "Kharkiv";

/// (facility id, name)
pub const FACILITIES: [(&str, &str); 4] = [
    ("kharkiv-regional", "Kharkiv Regional Clinical Hospital"),
    ("kharkiv-emergency", "Kharkiv City Emergency Hospital"),
    ("izium-central", "Izium Central City Hospital"),
    ("chuhuiv-central", "Chuhuiv Central District Hospital"),
];

/// The demo coordinator (region Kharkiv).
pub const COORDINATOR: &str = "olena";
/// The demo admin.
pub const ADMIN: &str = "admin";
/// (user id, name, facility id): one receiver per demo facility.
pub const RECEIVERS: [(&str, &str, &str); 4] = [
    ("anna", "Anna Shevchenko", "kharkiv-regional"),
    ("petro", "Petro Bondarenko", "kharkiv-emergency"),
    ("iryna", "Iryna Melnyk", "izium-central"),
    ("mykola", "Mykola Tkachenko", "chuhuiv-central"),
];

/// A demo account's password: public, like everything about the demo.
pub fn password(user: &str) -> String {
    format!("{user}-demo-password")
}

/// The fixed token of a demo account's demo device.
pub fn token(user: &str) -> String {
    format!("demo-{user}")
}

pub struct DemoAccount {
    pub user: String,
    pub role: Role,
    /// A receiver's facility, or a coordinator's region.
    pub scope: String,
}

pub struct Demo {
    pub accounts: Vec<DemoAccount>,
    pub shipments: usize,
    pub created: usize,
}

impl Demo {
    /// What a newcomer needs to try the server.
    pub fn instructions(&self, base_url: &str) -> String {
        let mut s = format!(
            "\naidsync demo: {} shipments ({} new) for {} facilities in Kharkiv region\n\n",
            self.shipments,
            self.created,
            FACILITIES.len()
        );
        s.push_str("Demo accounts (log in with the password, or use the token directly):\n");
        s.push_str(&format!(
            "  {:<8} {:<12} {:<20} {:<26} TOKEN\n",
            "USER", "ROLE", "FACILITY / REGION", "PASSWORD"
        ));
        for a in &self.accounts {
            s.push_str(&format!(
                "  {:<8} {:<12} {:<20} {:<26} {}\n",
                a.user,
                a.role.as_str(),
                a.scope,
                password(&a.user),
                token(&a.user)
            ));
        }
        let coordinator = token(COORDINATOR);
        let anna = password("anna");
        s.push_str(&format!(
            "\nTry:\n  curl -s -H 'Authorization: Bearer {coordinator}' {base_url}/api/v1/shipments\n  \
             curl -s -X POST -H 'Content-Type: application/json' \\\n    \
             -d '{{\"user\":\"anna\",\"password\":\"{anna}\",\"device_name\":\"curl\"}}' {base_url}/api/v1/login\n  \
             cargo run -p aidsync-tests --bin aidsync-phones -- --server {base_url} --phones 20 --receipts 10\n"
        ));
        s
    }
}

struct Item {
    item: &'static str,
    category: &'static str,
    unit: &'static str,
    serial_prefix: &'static str,
    /// What each unit should come with, ticked per unit on the phone.
    accessories: &'static [&'static str],
    /// Estimated value of one unit (made up for the demo).
    unit_value: &'static str,
}

const MRI: Item = Item {
    item: "MRI system 1.5T",
    category: "imaging",
    unit: "system",
    serial_prefix: "MRI",
    accessories: &[
        "Operator manual",
        "Service manual",
        "Phantom kit",
        "Certificate of conformity",
    ],
    unit_value: "1200000.00 EUR",
};
const CT: Item = Item {
    item: "CT scanner 64-slice",
    category: "imaging",
    unit: "system",
    serial_prefix: "CT",
    accessories: &[
        "Operator manual",
        "Service manual",
        "Certificate of conformity",
    ],
    unit_value: "650000.00 EUR",
};
const ENDOSCOPE: Item = Item {
    item: "Endoscopic imaging system",
    category: "endoscopy",
    unit: "system",
    serial_prefix: "END",
    accessories: &["Light source", "Processor", "Operator manual"],
    unit_value: "85000.00 EUR",
};
const MICROSCOPE: Item = Item {
    item: "Neurosurgical microscope",
    category: "surgical",
    unit: "unit",
    serial_prefix: "NSM",
    accessories: &["Drape set", "Operator manual", "Certificate of conformity"],
    unit_value: "240000.00 EUR",
};
const ULTRASOUND: Item = Item {
    item: "Portable ultrasound machine",
    category: "imaging",
    unit: "unit",
    serial_prefix: "PUS",
    accessories: &["Linear probe", "Convex probe", "Charger", "Operator manual"],
    unit_value: "18000.00 EUR",
};
const AMBULANCE: Item = Item {
    item: "Ambulance vehicle (type B)",
    category: "vehicle",
    unit: "vehicle",
    serial_prefix: "VIN",
    accessories: &["Spare wheel", "Jack", "Registration papers"],
    unit_value: "95000.00 EUR",
};
const UTILITY: Item = Item {
    item: "Utility vehicle 4x4",
    category: "vehicle",
    unit: "vehicle",
    serial_prefix: "VIN",
    accessories: &["Spare wheel", "Jack", "Registration papers"],
    unit_value: "95000.00 EUR",
};

/// (shipment id, donor, facility index, reference, expected_on, [(item, qty)])
type Plan = (
    &'static str,
    &'static str,
    usize,
    &'static str,
    &'static str,
    &'static [(&'static Item, u64)],
);

const PLAN: [Plan; 8] = [
    (
        "jica-2026-001",
        "JICA",
        0,
        "JICA/UA/2026/001",
        "2026-11-10",
        &[(&MRI, 1), (&CT, 1), (&ENDOSCOPE, 4)],
    ),
    (
        "jica-2026-002",
        "JICA",
        0,
        "JICA/UA/2026/002",
        "2026-11-20",
        &[(&MICROSCOPE, 8), (&ULTRASOUND, 2)],
    ),
    (
        "jica-2026-003",
        "JICA",
        1,
        "JICA/UA/2026/003",
        "2026-11-12",
        &[(&CT, 1), (&ENDOSCOPE, 3), (&MICROSCOPE, 6)],
    ),
    (
        "goj-2026-101",
        "Government of Japan",
        1,
        "GOJ-GRANT-2026-101",
        "2026-11-25",
        &[(&AMBULANCE, 6), (&UTILITY, 2)],
    ),
    (
        "jica-2026-004",
        "JICA",
        2,
        "JICA/UA/2026/004",
        "2026-11-18",
        &[(&ENDOSCOPE, 2), (&MICROSCOPE, 4), (&ULTRASOUND, 2)],
    ),
    (
        "goj-2026-102",
        "Government of Japan",
        2,
        "GOJ-GRANT-2026-102",
        "2026-12-01",
        &[(&AMBULANCE, 4), (&UTILITY, 2)],
    ),
    (
        "jica-2026-005",
        "JICA",
        3,
        "JICA/UA/2026/005",
        "2026-11-28",
        &[(&ENDOSCOPE, 1), (&MICROSCOPE, 2), (&ULTRASOUND, 1)],
    ),
    (
        "goj-2026-103",
        "Government of Japan",
        3,
        "GOJ-GRANT-2026-103",
        "2026-12-05",
        &[(&AMBULANCE, 4), (&UTILITY, 2)],
    ),
];

fn id<T: std::str::FromStr>(s: &str) -> Result<T, AppError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("demo id {s}: {e}")))
}

/// Ensures a demo account and its demo device exist (renewing the device's
/// token so it never expires while the demo runs), and returns the caller
/// context of that device.
async fn account(
    db: &Db,
    new: NewUser,
    ttl_ms: i64,
    out: &mut Vec<DemoAccount>,
) -> Result<Caller, AppError> {
    let user_id = new.id.to_string();
    let expires_at = now_ms().saturating_add(ttl_ms);
    let hash = token_hash(&token(&user_id));
    let demo_device = db.device_by_token_hash(&hash).await?;
    let user = match db.user(&user_id).await? {
        // An account of this name that the demo did not make (it would
        // have its demo device): never hand out a public token for it.
        Some(_) if demo_device.is_none() => {
            return Err(AppError::Conflict(format!(
                "user {user_id} exists and is not a demo account; \
                 run --demo only on a database of its own"
            )));
        }
        Some(user) => user,
        None => users::add(db, new.clone(), &password(&user_id), now_ms()).await?,
    };
    let device = match demo_device {
        Some(device) => {
            db.set_device_expiry(&device.id, expires_at).await?;
            device
        }
        None => {
            let device = DeviceRow {
                id: format!("demo-device-{user_id}"),
                user_id: user_id.clone(),
                facility_id: user.facility_id.clone(),
                name: format!("demo device of {user_id}"),
                actor_id: automerge::ActorId::random().to_hex_string(),
                created_at: now_ms(),
                expires_at,
                revoked_at: None,
            };
            db.insert_device(&device, &hash).await?;
            device
        }
    };
    out.push(DemoAccount {
        user: user_id,
        role: new.role,
        scope: new
            .facility
            .as_ref()
            .map(ToString::to_string)
            .or(new.region.clone())
            .unwrap_or_else(|| "-".into()),
    });
    Ok(Caller {
        device: id(&device.id)?,
        user: new.id,
        role: new.role,
        facility: new.facility,
        region: new.region,
        actor: automerge::ActorId::try_from(device.actor_id.as_str())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("demo actor: {e}")))?,
        expires_at,
    })
}

/// Seeds whatever part of the demo is missing. `ttl_ms` is the token
/// lifetime the server runs with.
pub async fn seed(db: &Db, ttl_ms: i64) -> Result<Demo, AppError> {
    for (id, name) in FACILITIES {
        db.insert_facility(&FacilityRow {
            id: id.to_owned(),
            name: name.to_owned(),
            region: REGION.to_owned(),
            created_at: now_ms(),
        })
        .await?;
    }
    let mut accounts = Vec::new();
    let person = |user: &str, name: &str, role: Role| -> Result<NewUser, AppError> {
        Ok(NewUser {
            id: id::<UserId>(user)?,
            name: name.to_owned(),
            role,
            facility: None,
            region: None,
        })
    };
    account(
        db,
        person(ADMIN, "Demo Administrator", Role::Admin)?,
        ttl_ms,
        &mut accounts,
    )
    .await?;
    let coordinator = account(
        db,
        NewUser {
            region: Some(REGION.to_owned()),
            ..person(COORDINATOR, "Olena Kovalenko", Role::Coordinator)?
        },
        ttl_ms,
        &mut accounts,
    )
    .await?;
    let mut receivers = Vec::new();
    for (user, name, facility) in RECEIVERS {
        receivers.push(
            account(
                db,
                NewUser {
                    facility: Some(id::<FacilityId>(facility)?),
                    ..person(user, name, Role::Receiver)?
                },
                ttl_ms,
                &mut accounts,
            )
            .await?,
        );
    }
    let mut created = 0;
    for (n, (sid, donor, facility, reference, expected_on, items)) in PLAN.iter().enumerate() {
        let lines = items
            .iter()
            .enumerate()
            .map(|(i, (item, qty))| {
                Ok(Line {
                    id: id::<LineId>(&format!("line-{}", i + 1))?,
                    item: item.item.to_owned(),
                    category: item.category.to_owned(),
                    unit: item.unit.to_owned(),
                    quantity_expected: *qty,
                    serials_expected: (1..=*qty)
                        .map(|k| {
                            format!(
                                "{}-26{:02}{:03}",
                                item.serial_prefix,
                                n + 1,
                                k + 100 * i as u64
                            )
                        })
                        .collect(),
                    accessories: item.accessories.iter().map(|a| (*a).to_owned()).collect(),
                    unit_value: Some(item.unit_value.to_owned()),
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let new = NewShipment {
            id: id::<ShipmentId>(sid)?,
            donor: (*donor).to_owned(),
            programme: "Emergency medical equipment for Kharkiv region".to_owned(),
            reference: (*reference).to_owned(),
            destination_facility: id::<FacilityId>(FACILITIES[*facility].0)?,
            expected_on: Some((*expected_on).to_owned()),
            note: String::new(),
            lines,
        };
        match shipments::create(db, &coordinator, new, now_ms()).await {
            Ok(_) => created += 1,
            Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if created == PLAN.len() {
        // A fresh demo: what the phones "recorded" last week, so the
        // coordinator's views have something to find.
        record_receipts(db, &receivers).await?;
        review(db, &coordinator).await?;
    }
    Ok(Demo {
        accounts,
        shipments: PLAN.len(),
        created,
    })
}

/// A receipt as a demo phone recorded it.
struct DemoReceipt {
    /// Index into [`RECEIVERS`].
    by: usize,
    shipment: &'static str,
    id: &'static str,
    line: &'static str,
    quantity: u64,
    condition: Condition,
    serials: &'static [&'static str],
    note: &'static str,
    voids: Option<&'static str>,
    hours_ago: i64,
}

const fn good(
    by: usize,
    shipment: &'static str,
    id: &'static str,
    line: &'static str,
    quantity: u64,
    serials: &'static [&'static str],
    hours_ago: i64,
) -> DemoReceipt {
    DemoReceipt {
        by,
        shipment,
        id,
        line,
        quantity,
        condition: Condition::Good,
        serials,
        note: "",
        voids: None,
        hours_ago,
    }
}

/// One of each thing a coordinator looks for: damage, missing parts, a
/// serial not on the manifest, a serial counted twice, a surplus, a wrong
/// item, a correction (void), and shipments still outstanding.
const RECEIPTS: [DemoReceipt; 13] = [
    good(
        0,
        "jica-2026-002",
        "demo-anna-1",
        "line-1",
        5,
        &[
            "NSM-2602001",
            "NSM-2602002",
            "NSM-2602003",
            "NSM-2602004",
            "NSM-2602005",
        ],
        30,
    ),
    DemoReceipt {
        condition: Condition::Damaged,
        note: "Optics cracked in transit",
        ..good(
            0,
            "jica-2026-002",
            "demo-anna-2",
            "line-1",
            1,
            &["NSM-2602006"],
            30,
        )
    },
    good(
        0,
        "jica-2026-002",
        "demo-anna-3",
        "line-2",
        2,
        &["PUS-2602101", "PUS-2602199"],
        29,
    ),
    good(
        1,
        "jica-2026-003",
        "demo-petro-1",
        "line-1",
        1,
        &["CT-2603001"],
        50,
    ),
    good(
        1,
        "jica-2026-003",
        "demo-petro-2",
        "line-2",
        2,
        &["END-2603101", "END-2603102"],
        49,
    ),
    DemoReceipt {
        note: "Counted again at the warehouse",
        ..good(
            1,
            "jica-2026-003",
            "demo-petro-3",
            "line-2",
            1,
            &["END-2603102"],
            20,
        )
    },
    good(
        1,
        "goj-2026-101",
        "demo-petro-4",
        "line-1",
        7,
        &[
            "VIN-2604001",
            "VIN-2604002",
            "VIN-2604003",
            "VIN-2604004",
            "VIN-2604005",
            "VIN-2604006",
            "VIN-2604777",
        ],
        26,
    ),
    DemoReceipt {
        condition: Condition::WrongItem,
        note: "A minibus came instead of a 4x4",
        ..good(1, "goj-2026-101", "demo-petro-5", "line-2", 1, &[], 26)
    },
    good(
        2,
        "jica-2026-004",
        "demo-iryna-1",
        "line-1",
        1,
        &["END-2605001"],
        70,
    ),
    DemoReceipt {
        condition: Condition::MissingParts,
        note: "No light source in the box",
        ..good(
            2,
            "jica-2026-004",
            "demo-iryna-2",
            "line-1",
            1,
            &["END-2605002"],
            70,
        )
    },
    good(
        2,
        "jica-2026-004",
        "demo-iryna-3",
        "line-2",
        4,
        &["NSM-2605101", "NSM-2605102", "NSM-2605103", "NSM-2605104"],
        69,
    ),
    DemoReceipt {
        note: "Counted one box twice",
        voids: Some("demo-iryna-3"),
        ..good(2, "jica-2026-004", "demo-iryna-4", "line-2", 0, &[], 68)
    },
    good(
        2,
        "jica-2026-004",
        "demo-iryna-5",
        "line-2",
        3,
        &["NSM-2605101", "NSM-2605102", "NSM-2605103"],
        68,
    ),
];

/// Sends [`RECEIPTS`] the way phones do: recorded on a copy of the
/// shipment under each receiver's demo device, then uploaded through the
/// sync service (so they are checked, attributed and projected like any).
async fn record_receipts(db: &Db, receivers: &[Caller]) -> Result<(), AppError> {
    let now = now_ms();
    for (by, caller) in receivers.iter().enumerate() {
        let mut docs = Vec::new();
        for shipment in PLAN.iter().map(|p| p.0) {
            let mine: Vec<&DemoReceipt> = RECEIPTS
                .iter()
                .filter(|r| r.by == by && r.shipment == shipment)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut tx = db.begin_read().await?;
            let stored = tx.load_document(shipment, false).await?;
            tx.commit().await?;
            let stored = stored.ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("demo shipment {shipment} is missing"))
            })?;
            let mut doc = ShipmentDoc::from_automerge(stored.doc);
            let before = doc.heads();
            doc.set_actor(caller.actor.clone());
            let who = Recorder {
                user: caller.user.clone(),
                device: caller.device.clone(),
            };
            for r in mine {
                let new = NewReceipt {
                    id: id::<ReceiptId>(r.id)?,
                    line_id: id::<LineId>(r.line)?,
                    quantity: r.quantity,
                    condition: r.condition,
                    serials: r.serials.iter().map(|s| s.to_string()).collect(),
                    note: r.note.to_owned(),
                    voids: r.voids.map(id::<ReceiptId>).transpose()?,
                    stage: None,
                    reason: None,
                    delivery_id: None,
                };
                // The reason the phone offers for a short, over or damaged count.
                let current = doc.read().map_err(|e| {
                    AppError::Internal(anyhow::anyhow!("demo shipment {shipment}: {e}"))
                })?;
                let new = NewReceipt {
                    reason: current.suggested_reason(&new),
                    ..new
                };
                doc.record_receipt(new, &who, now - r.hours_ago * 3_600_000)
                    .map_err(|e| {
                        AppError::Internal(anyhow::anyhow!("demo receipt {}: {e}", r.id))
                    })?;
            }
            let changes = doc.automerge_mut().get_changes(&before);
            docs.push(DocUpload {
                id: id::<ShipmentId>(shipment)?,
                changes: Changes::chunks(&changes),
            });
        }
        if docs.is_empty() {
            continue;
        }
        let request = SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor: 0,
            docs,
        };
        let outcome =
            crate::service::sync::sync(db, caller, request, &Limits::default(), now).await?;
        if outcome.forbidden + outcome.refused + outcome.not_found > 0 {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the demo's receipts from {} were refused",
                caller.user
            )));
        }
    }
    Ok(())
}

/// The coordinator has already looked at the damaged microscope (reported,
/// still to follow up: it stays open) and accepted the endoscope whose
/// light source came separately (settled).
async fn review(db: &Db, coordinator: &Caller) -> Result<(), AppError> {
    let reviews = [
        (
            "jica-2026-002",
            NewReview {
                id: id::<ReviewId>("demo-review-1")?,
                note: "Reported to JICA; replacement optics requested.".to_owned(),
                verdict: Some(Verdict::HasIssues),
                resolves: vec![id::<ReceiptId>("demo-anna-2")?],
            },
        ),
        (
            "jica-2026-004",
            NewReview {
                id: id::<ReviewId>("demo-review-2")?,
                note: "The light source came in a separate parcel; accepted.".to_owned(),
                verdict: Some(Verdict::Approved),
                resolves: vec![id::<ReceiptId>("demo-iryna-2")?],
            },
        ),
    ];
    for (shipment, new) in reviews {
        shipments::review(db, coordinator, &id::<ShipmentId>(shipment)?, new, now_ms()).await?;
    }
    Ok(())
}
