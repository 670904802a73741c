//! A small world for each test: a server, a coordinator, two shipments.

use rand::RngCore;
use serde_json::{Value, json};

use aidsync_server::service::Limits;
use aidsync_server::service::devices::RegisteredDevice;
use aidsync_shared::ids::{LineId, ReceiptId, ShipmentId, id_from_random};
use aidsync_shared::model::{Condition, NewReceipt};
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::Api;

pub const FACILITY: &str = "kharkiv-regional";
pub const OTHER_FACILITY: &str = "izium-central";
pub const SHIPMENT: &str = "jica-test-001";
pub const SECOND_SHIPMENT: &str = "jica-test-002";

pub struct World {
    pub server: TestServer,
    pub api: Api,
    pub coordinator: RegisteredDevice,
}

impl World {
    pub async fn new(db: &TestDb) -> World {
        World::with_limits(db, Limits::default()).await
    }

    pub async fn with_limits(db: &TestDb, limits: Limits) -> World {
        let server = TestServer::start_with(db.url(), limits).await.unwrap();
        let api = Api::new(&server.base);
        let coordinator = api.register("coordinator-test", None).await.unwrap();
        let world = World {
            server,
            api,
            coordinator,
        };
        for facility in [FACILITY, OTHER_FACILITY] {
            world.add_facility(facility).await;
        }
        world.create_shipment(SHIPMENT, FACILITY).await;
        world.create_shipment(SECOND_SHIPMENT, FACILITY).await;
        world
    }

    pub async fn add_facility(&self, id: &str) {
        let (status, body) = self
            .api
            .post(
                Some(&self.coordinator.token),
                "/api/v1/facilities",
                &json!({ "id": id, "name": format!("Hospital {id}"), "region": "Kharkiv" }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "adding facility {id}: {body}");
    }

    pub async fn create_shipment(&self, id: &str, facility: &str) {
        let (status, body) = self
            .api
            .post(
                Some(&self.coordinator.token),
                "/api/v1/shipments",
                &shipment_json(id, facility),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "creating {id}: {body}");
    }

    /// The coordinator's view of a shipment.
    pub async fn detail(&self, id: &str) -> Value {
        let (status, body) = self
            .api
            .get(
                Some(&self.coordinator.token),
                &format!("/api/v1/shipments/{id}"),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub fn shipment_json(id: &str, facility: &str) -> Value {
    json!({
        "id": id,
        "donor": "JICA",
        "programme": "Emergency medical equipment for Kharkiv region",
        "reference": format!("REF-{id}"),
        "destination_facility": facility,
        "expected_on": "2026-11-20",
        "lines": [
            {
                "id": "line-1",
                "item": "Portable ultrasound system",
                "category": "ultrasound",
                "unit": "unit",
                "quantity_expected": 5,
                "serials_expected": ["US-1", "US-2", "US-3", "US-4", "US-5"]
            },
            {
                "id": "line-2",
                "item": "Ambulance vehicle",
                "category": "vehicle",
                "unit": "vehicle",
                "quantity_expected": 2,
                "serials_expected": []
            }
        ]
    })
}

pub fn shipment_id(id: &str) -> ShipmentId {
    ShipmentId::parse(id).unwrap()
}

pub fn receipt(line: &str, quantity: u64, condition: Condition, serials: &[&str]) -> NewReceipt {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    NewReceipt {
        id: ReceiptId::parse(id_from_random(bytes)).unwrap(),
        line_id: LineId::parse(line).unwrap(),
        quantity,
        condition,
        serials: serials.iter().map(|s| s.to_string()).collect(),
        note: String::new(),
        voids: None,
    }
}

/// The receipts of a shipment detail, as (recorded_by, quantity) sorted.
pub fn receipts_by_user(detail: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = detail["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recorded_by"].as_str().unwrap().to_owned(),
                r["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}
