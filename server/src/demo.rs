//! The demo data set: Government of Japan / JICA deliveries to hospitals in
//! Kharkiv region, so a newcomer has something real-looking to sync against.
//!
//! Seeding is idempotent: run `--demo` on every start and it adds only what
//! is missing. Demo devices have fixed, printed tokens; never use `--demo`
//! on a server that holds real data.

use automerge::ActorId;

use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ShipmentId, UserId};
use aidsync_shared::model::{Line, NewShipment};

use crate::caller::{Caller, token_hash};
use crate::error::AppError;
use crate::service::{now_ms, shipments};
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

pub struct DemoDevice {
    pub user: String,
    pub facility: Option<String>,
    pub token: String,
}

pub struct Demo {
    pub devices: Vec<DemoDevice>,
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
        s.push_str("Demo device tokens (send as `Authorization: Bearer TOKEN`):\n");
        for d in &self.devices {
            s.push_str(&format!(
                "  {:<34} {:<20} {}\n",
                d.user,
                d.facility.as_deref().unwrap_or("(all facilities)"),
                d.token
            ));
        }
        let coordinator = self.devices.first().map(|d| d.token.as_str()).unwrap_or("");
        s.push_str(&format!(
            "\nTry:\n  curl -s -H 'Authorization: Bearer {coordinator}' {base_url}/api/v1/shipments\n  \
             curl -s -H 'Authorization: Bearer {coordinator}' '{base_url}/api/v1/shipments?facility=izium-central'\n  \
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
}

const MRI: Item = Item {
    item: "MRI system 1.5T",
    category: "imaging",
    unit: "system",
    serial_prefix: "MRI",
};
const CT: Item = Item {
    item: "CT scanner 64-slice",
    category: "imaging",
    unit: "system",
    serial_prefix: "CT",
};
const ENDOSCOPE: Item = Item {
    item: "Endoscopic imaging system",
    category: "endoscopy",
    unit: "system",
    serial_prefix: "END",
};
const MICROSCOPE: Item = Item {
    item: "Neurosurgical microscope",
    category: "surgical",
    unit: "unit",
    serial_prefix: "NSM",
};
const ULTRASOUND: Item = Item {
    item: "Portable ultrasound machine",
    category: "imaging",
    unit: "unit",
    serial_prefix: "PUS",
};
const AMBULANCE: Item = Item {
    item: "Ambulance vehicle (type B)",
    category: "vehicle",
    unit: "vehicle",
    serial_prefix: "VIN",
};
const UTILITY: Item = Item {
    item: "Utility vehicle 4x4",
    category: "vehicle",
    unit: "vehicle",
    serial_prefix: "VIN",
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

/// Ensures a demo device exists and returns its caller context.
async fn device(
    db: &Db,
    user: &str,
    facility: Option<&str>,
    out: &mut Vec<DemoDevice>,
) -> Result<Caller, AppError> {
    let token = format!("demo-{user}");
    let hash = token_hash(&token);
    let row = match db.device_by_token_hash(&hash).await? {
        Some(row) => row,
        None => {
            let row = DeviceRow {
                id: format!("demo-device-{user}"),
                user_id: user.to_owned(),
                facility_id: facility.map(str::to_owned),
                name: format!("demo phone of {user}"),
                actor_id: ActorId::random().to_hex_string(),
                created_at: now_ms(),
                revoked_at: None,
            };
            db.insert_device(&row, &hash).await?;
            row
        }
    };
    out.push(DemoDevice {
        user: user.to_owned(),
        facility: facility.map(str::to_owned),
        token,
    });
    Ok(Caller {
        device: id::<DeviceId>(&row.id)?,
        user: id::<UserId>(&row.user_id)?,
        actor: ActorId::try_from(row.actor_id.as_str())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("demo actor: {e}")))?,
        facility: row
            .facility_id
            .as_deref()
            .map(id::<FacilityId>)
            .transpose()?,
    })
}

/// Seeds whatever part of the demo is missing.
pub async fn seed(db: &Db) -> Result<Demo, AppError> {
    for (id, name) in FACILITIES {
        db.insert_facility(&FacilityRow {
            id: id.to_owned(),
            name: name.to_owned(),
            region: REGION.to_owned(),
            created_at: now_ms(),
        })
        .await?;
    }
    let mut devices = Vec::new();
    let coordinator = device(db, "coordinator-olena", None, &mut devices).await?;
    for (facility, _) in FACILITIES {
        device(
            db,
            &format!("receiver-{facility}"),
            Some(facility),
            &mut devices,
        )
        .await?;
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
    Ok(Demo {
        devices,
        shipments: PLAN.len(),
        created,
    })
}
