//! A simulated phone: `aidsync_shared`'s client engine over a memory store,
//! talking to a real server over HTTP exactly as the app does.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::{Value, json};

use aidsync_server::service::auth::Session;
use aidsync_shared::ids::{DeviceId, ShipmentId, UserId};
use aidsync_shared::model::{NewReceipt, Receipt};
use aidsync_shared::roles::Role;
use aidsync_shared::sync::client::{
    ClientEngine, ClientError, Identity, MemoryStore, MemoryStoreError, SyncReport,
};
use aidsync_shared::sync::protocol::{self, SyncResponse};

use crate::now_ms;

/// Bytes on the wire (compressed, as sent and received) and request count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub requests: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, other: Traffic) {
        self.bytes_up += other.bytes_up;
        self.bytes_down += other.bytes_down;
        self.requests += other.requests;
    }
}

/// What the network does to one sync attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Delivered both ways.
    None,
    /// The request never reaches the server.
    LoseRequest,
    /// The server handles the request, but its answer never arrives.
    LoseResponse,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("lost on the network ({0:?})")]
    Lost(Fault),
    #[error("server answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("undecodable response: {0}")]
    Decode(String),
    #[error(transparent)]
    Client(#[from] ClientError<MemoryStoreError>),
}

/// One HTTP exchange as the wire saw it.
#[derive(Debug)]
pub struct WireResponse {
    pub status: StatusCode,
    /// Decompressed body.
    pub body: Vec<u8>,
    pub traffic: Traffic,
}

/// POSTs `body` to `url`, gzip-compressed when `gzip` is set, accepting a
/// gzip answer, and counts the bytes that crossed the wire.
pub async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
    gzip: bool,
) -> Result<WireResponse, SyncError> {
    let mut request = http
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT_ENCODING, "gzip");
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let sent = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(body)
            .and_then(|()| encoder.finish())
            .map_err(|e| SyncError::Decode(format!("gzip: {e}")))?
    } else {
        body.to_vec()
    };
    if gzip {
        request = request.header(CONTENT_ENCODING, "gzip");
    }
    let bytes_up = sent.len() as u64;
    let response = request.body(sent).send().await?;
    let status = response.status();
    let gzipped = response
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let raw = response.bytes().await?;
    let body = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| SyncError::Decode(format!("gunzip: {e}")))?;
        out
    } else {
        raw.to_vec()
    };
    Ok(WireResponse {
        status,
        body,
        traffic: Traffic {
            bytes_up,
            bytes_down: raw.len() as u64,
            requests: 1,
        },
    })
}

/// The JSON side of the API, for setting up and checking tests.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Logs in as `user`: a new device and its token.
    pub async fn login(&self, user: &str, password: &str) -> anyhow::Result<Session> {
        let (status, body) = self
            .post(
                None,
                "/api/v1/login",
                &json!({ "user": user, "password": password, "device_name": "simulated phone" }),
            )
            .await?;
        if status != StatusCode::CREATED {
            bail!("logging in as {user}: {status} {body}");
        }
        serde_json::from_value(body).context("login response")
    }

    pub async fn get(
        &self,
        token: Option<&str>,
        path: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// Sends a request; the body is parsed as JSON (`Value::Null` if empty,
    /// a string if not JSON, so a test can show what came back).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }
}

/// A phone: a logged-in device with its own engine and memory store.
pub struct Phone {
    pub session: Session,
    pub engine: ClientEngine<MemoryStore>,
    pub traffic: Traffic,
    http: reqwest::Client,
    sync_url: String,
}

/// The engine's identity for a login.
pub fn identity(session: &Session) -> anyhow::Result<Identity> {
    Ok(Identity {
        user: UserId::parse(&session.user.id)?,
        role: Role::parse(&session.user.role).context("role in the login response")?,
        device: DeviceId::parse(&session.device_id)?,
        actor: session.actor_id.clone(),
    })
}

impl Phone {
    /// Logs in as `user` and opens an empty engine for the new device.
    pub async fn login(api: &Api, user: &str, password: &str) -> anyhow::Result<Phone> {
        let session = api.login(user, password).await?;
        let mut engine = ClientEngine::open(MemoryStore::default()).await?;
        engine.set_identity(identity(&session)?).await?;
        Ok(Phone {
            session,
            engine,
            traffic: Traffic::default(),
            http: api.http.clone(),
            sync_url: format!("{}/api/v1/sync", api.base),
        })
    }

    /// Logs in again on this phone (its token expired or was revoked): a
    /// new device and token, the same local store and outbox.
    pub async fn login_again(&mut self, api: &Api, password: &str) -> anyhow::Result<()> {
        let session = api.login(&self.session.user.id, password).await?;
        self.engine.set_identity(identity(&session)?).await?;
        self.session = session;
        Ok(())
    }

    pub fn user(&self) -> &str {
        &self.session.user.id
    }

    /// The same phone talking to a server at another address (a restarted
    /// test server listens on a new port).
    pub fn moved_to(self, api: &Api) -> Phone {
        Phone {
            http: api.http.clone(),
            sync_url: format!("{}/api/v1/sync", api.base),
            ..self
        }
    }

    /// Sends this phone's next syncs to the server `api` talks to (one of
    /// several serving the same database).
    pub fn point_at(&mut self, api: &Api) {
        self.http = api.http.clone();
        self.sync_url = format!("{}/api/v1/sync", api.base);
    }

    pub fn token(&self) -> &str {
        &self.session.token
    }

    /// Records a receipt locally (offline); durable when it returns. A
    /// receipt that needs a reason and has none gets the one that fits
    /// (short, over, damaged in transit…), as a person picks it when the
    /// app asks.
    pub async fn record(
        &mut self,
        shipment: &ShipmentId,
        mut receipt: NewReceipt,
    ) -> Result<Receipt, SyncError> {
        if receipt.reason.is_none()
            && let Ok(current) = self.engine.shipment(shipment)
        {
            receipt.reason = current.suggested_reason(&receipt);
        }
        Ok(self
            .engine
            .record_receipt(shipment, receipt, now_ms())
            .await?)
    }

    /// Records a delivery (a truck's arrival) locally; durable when it
    /// returns.
    pub async fn deliver(
        &mut self,
        shipment: &ShipmentId,
        new: aidsync_shared::model::NewDelivery,
    ) -> Result<aidsync_shared::model::Delivery, SyncError> {
        Ok(self.engine.record_delivery(shipment, new, now_ms()).await?)
    }

    /// Records one step of a unit locally (offline); durable when it returns.
    pub async fn unit_step(
        &mut self,
        shipment: &ShipmentId,
        new: aidsync_shared::model::NewUnitEvent,
    ) -> Result<aidsync_shared::model::UnitEvent, SyncError> {
        Ok(self
            .engine
            .record_unit_event(shipment, new, now_ms())
            .await?)
    }

    /// Attaches a file's reference locally (offline); durable when it returns.
    pub async fn attach(
        &mut self,
        shipment: &ShipmentId,
        new: aidsync_shared::model::NewAttachment,
    ) -> Result<aidsync_shared::model::Attachment, SyncError> {
        Ok(self
            .engine
            .record_attachment(shipment, new, now_ms())
            .await?)
    }

    /// One sync round trip, through a network that may `fault`. Refusals of
    /// single documents (HTTP 422/404 with a sync response) are reported in
    /// the [`SyncReport`], not as errors.
    pub async fn sync(&mut self, fault: Fault) -> Result<SyncReport, SyncError> {
        let request = protocol::encode(&self.engine.sync_request());
        if fault == Fault::LoseRequest {
            return Err(SyncError::Lost(fault));
        }
        let wire = post_raw(
            &self.http,
            &self.sync_url,
            Some(&self.session.token),
            protocol::CONTENT_TYPE,
            &request,
            true,
        )
        .await?;
        self.traffic += wire.traffic;
        if fault == Fault::LoseResponse {
            return Err(SyncError::Lost(fault));
        }
        let carries_response = matches!(
            wire.status,
            StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_FOUND
        );
        if !carries_response {
            return Err(SyncError::Status {
                status: wire.status,
                body: String::from_utf8_lossy(&wire.body).into_owned(),
            });
        }
        let response: SyncResponse = protocol::decode(&wire.body).map_err(|e| {
            // A 404 for a route, say, carries JSON rather than CBOR.
            SyncError::Decode(format!(
                "{} ({}): {e}",
                wire.status,
                String::from_utf8_lossy(&wire.body)
            ))
        })?;
        Ok(self.engine.apply_response(response, now_ms()).await?)
    }

    /// Syncs on a perfect network until the server has nothing more to say
    /// (a response may ask for another round, e.g. after missing dependencies).
    pub async fn sync_settled(&mut self) -> Result<SyncReport, SyncError> {
        let mut total = SyncReport::default();
        for _ in 0..5 {
            let report = self.sync(Fault::None).await?;
            total.accepted += report.accepted;
            total.updated += report.updated;
            total.refused.extend(report.refused);
            if !report.again {
                return Ok(total);
            }
        }
        total.again = true;
        Ok(total)
    }
}
