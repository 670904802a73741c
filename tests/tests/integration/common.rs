//! A small world for each test: a server, a coordinator, two shipments.

use std::time::Duration;

use rand::RngCore;
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};

use aidsync_server::service::Limits;
use aidsync_server::service::auth::Session;
use aidsync_server::service::users::{self, NewUser};
use aidsync_shared::ids::{LineId, ReceiptId, ShipmentId, UserId, id_from_random};
use aidsync_shared::model::{Condition, NewReceipt};
use aidsync_shared::roles::Role;
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::{Api, Phone};

pub const FACILITY: &str = "kharkiv-regional";
pub const OTHER_FACILITY: &str = "izium-central";
/// A facility outside the coordinator's region.
pub const FAR_FACILITY: &str = "lviv-regional";
pub const REGION: &str = "Kharkiv";
pub const SHIPMENT: &str = "jica-test-001";
pub const SECOND_SHIPMENT: &str = "jica-test-002";
/// The first admin, created the way `aidsync admin user add` does.
pub const ADMIN: &str = "root";
/// The coordinator of [`REGION`].
pub const COORDINATOR: &str = "olena";

/// Every test account's password.
pub fn password(user: &str) -> String {
    format!("{user}-test-password")
}

pub struct World {
    pub server: TestServer,
    pub api: Api,
    pub admin: Session,
    pub coordinator: Session,
}

impl World {
    pub async fn new(db: &TestDb) -> World {
        World::with_limits(db, Limits::default()).await
    }

    /// A server with an admin, three facilities (two in [`REGION`], one
    /// far away), a coordinator of the region and two shipments to
    /// [`FACILITY`].
    pub async fn with_limits(db: &TestDb, limits: Limits) -> World {
        let server = TestServer::start_with(db.url(), limits).await.unwrap();
        let api = Api::new(&server.base);
        let root = NewUser {
            id: UserId::parse(ADMIN).unwrap(),
            name: "Test Administrator".into(),
            role: Role::Admin,
            facility: None,
            region: None,
        };
        users::add(server.db(), root, &password(ADMIN), aidsync_tests::now_ms())
            .await
            .unwrap();
        let admin = api.login(ADMIN, &password(ADMIN)).await.unwrap();
        let mut world = World {
            server,
            api,
            coordinator: admin.clone(),
            admin,
        };
        world.add_facility(FACILITY, REGION).await;
        world.add_facility(OTHER_FACILITY, REGION).await;
        world.add_facility(FAR_FACILITY, "Lviv").await;
        world
            .add_user(COORDINATOR, "coordinator", None, Some(REGION))
            .await;
        world.coordinator = world
            .api
            .login(COORDINATOR, &password(COORDINATOR))
            .await
            .unwrap();
        // Change notifications may travel through PostgreSQL, after the
        // request that caused them has answered: wait until these two have
        // arrived, so no test's stream hears of them late.
        let mut events = EventStream::opened(&world, &world.coordinator.token).await;
        world.create_shipment(SHIPMENT, FACILITY).await;
        world.create_shipment(SECOND_SHIPMENT, FACILITY).await;
        let mut unheard = vec![SHIPMENT, SECOND_SHIPMENT];
        while !unheard.is_empty() {
            let (_, data) = events
                .next(10)
                .await
                .expect("the shipments' creation is announced");
            let named = data["shipments"].as_array().cloned().unwrap_or_default();
            unheard.retain(|s| !named.iter().any(|n| n == s));
        }
        world
    }

    pub async fn add_facility(&self, id: &str, region: &str) {
        let (status, body) = self
            .api
            .post(
                Some(&self.admin.token),
                "/api/v1/facilities",
                &json!({ "id": id, "name": format!("Hospital {id}"), "region": region }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "adding facility {id}: {body}");
    }

    /// Adds an account through the admin API; its password is [`password`].
    pub async fn add_user(
        &self,
        id: &str,
        role: &str,
        facility: Option<&str>,
        region: Option<&str>,
    ) {
        let (status, body) = self
            .api
            .post(
                Some(&self.admin.token),
                "/api/v1/users",
                &json!({
                    "id": id, "name": format!("Test user {id}"), "role": role,
                    "facility": facility, "region": region, "password": password(id),
                }),
            )
            .await
            .unwrap();
        assert!(
            status == 201 || status == 409,
            "adding user {id}: {status} {body}"
        );
    }

    /// A receiver of `facility` (created if new) logged in on a new phone.
    pub async fn receiver(&self, user: &str, facility: &str) -> Phone {
        self.add_user(user, "receiver", Some(facility), None).await;
        Phone::login(&self.api, user, &password(user))
            .await
            .unwrap()
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
        stage: None,
        reason: None,
        delivery_id: None,
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

/// An open `GET /api/v1/events` stream: reads `event:`/`data:` pairs as
/// they arrive.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// What reading an event stream gave.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// An event's name and data.
    Event(String, Value),
    /// The server ended the stream cleanly.
    Ended,
    /// The connection failed.
    Failed(String),
    /// Nothing within the time allowed.
    TimedOut,
}

impl EventStream {
    pub async fn open(world: &World, token: &str) -> (StatusCode, EventStream) {
        EventStream::open_at(&world.api, token).await
    }

    /// Opens a stream on the server `api` talks to.
    pub async fn open_at(api: &Api, token: &str) -> (StatusCode, EventStream) {
        let response = api
            .http
            .get(format!("{}/api/v1/events", api.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let events = EventStream {
            response,
            buffer: String::new(),
        };
        (status, events)
    }

    /// Opens a stream that must be accepted.
    pub async fn opened(world: &World, token: &str) -> EventStream {
        let (status, events) = EventStream::open(world, token).await;
        assert_eq!(status, 200, "opening the event stream");
        events
    }

    /// The next event, or how the stream stopped, within `secs` seconds.
    pub async fn read(&mut self, secs: u64) -> Read {
        self.read_until(tokio::time::Instant::now() + Duration::from_secs(secs))
            .await
    }

    async fn read_until(&mut self, deadline: tokio::time::Instant) -> Read {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                };
                // Keep-alive comments carry no event.
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    return Read::Event(event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) => return Read::Ended,
                Ok(Err(e)) => return Read::Failed(e.to_string()),
                Err(_) => return Read::TimedOut,
            }
        }
    }

    /// The next event's name and data, within `secs` seconds; `None` if
    /// the stream stopped or stayed silent.
    pub async fn next(&mut self, secs: u64) -> Option<(String, Value)> {
        match self.read(secs).await {
            Read::Event(event, data) => Some((event, data)),
            Read::Ended | Read::Failed(_) | Read::TimedOut => None,
        }
    }

    /// The names of the events that arrived before the server ended the
    /// stream cleanly; panics if it did not end within `secs` seconds.
    pub async fn until_end(&mut self, secs: u64) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut names = Vec::new();
        loop {
            match self.read_until(deadline).await {
                Read::Event(name, _) => names.push(name),
                Read::Ended => return names,
                other => {
                    panic!("the stream did not end within {secs} s: {other:?} after {names:?}")
                }
            }
        }
    }
}

/// `GET path` with `token`: (status, content type, body).
pub async fn download(
    api: &aidsync_tests::phone::Api,
    token: &str,
    path: &str,
) -> (StatusCode, String, Vec<u8>) {
    let response = api
        .http
        .get(format!("{}{path}", api.base))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}
