//! The exported `Engine` class: the client engine over the page's store.
//! Values cross as JSON strings (the page parses them) or CBOR bytes (the
//! wire and the store); errors are JavaScript `Error`s whose `name` says
//! what kind of failure it is, so the app can tell a refused form from a
//! full disk.

use wasm_bindgen::prelude::*;

use aidsync_shared::ids::{AttachmentId, ShipmentId};
use aidsync_shared::model::{
    NewAttachment, NewDelivery, NewReceipt, NewUnitEvent, UnitCounts, date_of,
};
use aidsync_shared::sync::client::{ClientEngine, ClientError, Identity};
use aidsync_shared::sync::protocol::{SyncResponse, decode, encode};

use crate::store::{JsStore, PageStore, StoreError};
use crate::views;

/// A JavaScript `Error` with `name` set to `kind`.
fn error(kind: &str, message: impl std::fmt::Display) -> JsValue {
    let e = js_sys::Error::new(&message.to_string());
    e.set_name(kind);
    e.into()
}

/// Error names: `NotLoggedIn`, `UnknownShipment`, `Refused` (the model or
/// the role says no: show the message to the person),
/// `OtherUsersRecordsPending` (someone else's records still wait),
/// `NothingRefused` (no refusal to recover from), `StoreFailed`,
/// `CorruptStore`, `BadResponse`, `BadInput` (the page's own mistake).
fn client_error(e: ClientError<StoreError>) -> JsValue {
    let kind = match &e {
        ClientError::NotRegistered => "NotLoggedIn",
        ClientError::UnknownShipment(_) => "UnknownShipment",
        ClientError::Model(_) | ClientError::Forbidden(_) => "Refused",
        ClientError::OtherUsersRecordsPending { .. } => "OtherUsersRecordsPending",
        ClientError::Store(_) => "StoreFailed",
        ClientError::CorruptStore(_) => "CorruptStore",
        ClientError::BadResponse(_) => "BadResponse",
        ClientError::NothingRefused(_) => "NothingRefused",
    };
    error(kind, e)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, JsValue> {
    serde_json::to_string(value).map_err(|e| error("BadInput", e))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, JsValue> {
    serde_json::from_str(s).map_err(|e| error("BadInput", format!("{what}: {e}")))
}

fn shipment_id(id: &str) -> Result<ShipmentId, JsValue> {
    ShipmentId::parse(id).map_err(|e| error("BadInput", format!("shipment id: {e}")))
}

/// Milliseconds from JavaScript (`Date.now()`), refusing what is not one.
fn millis(now_ms: f64) -> Result<i64, JsValue> {
    if now_ms.is_finite() && (0.0..9.0e15).contains(&now_ms) {
        Ok(now_ms as i64)
    } else {
        Err(error("BadInput", format!("not a time in ms: {now_ms}")))
    }
}

#[wasm_bindgen]
pub struct Engine {
    inner: ClientEngine<PageStore>,
}

#[wasm_bindgen]
impl Engine {
    /// Opens the engine over whatever `store` holds.
    pub async fn open(store: JsStore) -> Result<Engine, JsValue> {
        let inner = ClientEngine::open(PageStore(store))
            .await
            .map_err(client_error)?;
        Ok(Engine { inner })
    }

    /// Who this phone is: `{user, role, device, actor}` as JSON, or
    /// `undefined` before the first login.
    pub fn identity(&self) -> Result<Option<String>, JsValue> {
        self.inner.identity().map(json).transpose()
    }

    /// Sets who this phone is after a login (JSON `{user, role, device,
    /// actor}`). Unsynced records stay and sync under the new login.
    #[wasm_bindgen(js_name = setIdentity)]
    pub async fn set_identity(&mut self, identity: String) -> Result<(), JsValue> {
        let identity: Identity = parse("identity", &identity)?;
        self.inner
            .set_identity(identity)
            .await
            .map_err(client_error)
    }

    /// Every shipment on the phone, as a JSON array of rows with status and
    /// totals, ordered by expected date then id.
    pub fn shipments(&self) -> Result<String, JsValue> {
        let mut rows = Vec::new();
        for id in self.inner.shipment_ids() {
            let shipment = self.inner.shipment(id).map_err(client_error)?;
            rows.push(views::row(&shipment, self.inner.refusal(id)));
        }
        rows.sort_by(|a, b| (&a.expected_on, &a.id).cmp(&(&b.expected_on, &b.id)));
        json(&rows)
    }

    /// One shipment with lines, receipts (newest first), reviews and the
    /// per-line summary, as JSON.
    pub fn shipment(&self, id: &str) -> Result<String, JsValue> {
        let id = shipment_id(id)?;
        let shipment = self.inner.shipment(&id).map_err(client_error)?;
        json(&views::detail(&shipment, self.inner.refusal(&id)))
    }

    /// Records a receipt (JSON `{id, line_id, quantity, condition, serials,
    /// note, voids, stage, reason, delivery_id}`; `id` fresh, e.g. from `crypto.randomUUID()`). Resolves
    /// only once it is durable; rejects with `Refused` and the reason if the
    /// model or the role does not allow it, saving nothing.
    #[wasm_bindgen(js_name = recordReceipt)]
    pub async fn record_receipt(
        &mut self,
        shipment: String,
        receipt: String,
        now_ms: f64,
    ) -> Result<String, JsValue> {
        let id = shipment_id(&shipment)?;
        let new: NewReceipt = parse("receipt", &receipt)?;
        let saved = self
            .inner
            .record_receipt(&id, new, millis(now_ms)?)
            .await
            .map_err(client_error)?;
        json(&saved)
    }

    /// Records a delivery (JSON `{id, waybill, transporter, vehicle, seal:
    /// "intact" | "broken" | "none", seal_number, packages_expected?,
    /// packages_received?, arrived_at, note, replaces?}`). Resolves once it
    /// is durable; rejects with `Refused` and the reason otherwise.
    #[wasm_bindgen(js_name = recordDelivery)]
    pub async fn record_delivery(
        &mut self,
        shipment: String,
        delivery: String,
        now_ms: f64,
    ) -> Result<String, JsValue> {
        let id = shipment_id(&shipment)?;
        let new: NewDelivery = parse("delivery", &delivery)?;
        let saved = self
            .inner
            .record_delivery(&id, new, millis(now_ms)?)
            .await
            .map_err(client_error)?;
        json(&saved)
    }

    /// Records one step of a serialised unit (JSON `{id, line_id, serial,
    /// step, note, ...the step's fields}`: `step` one of checklist
    /// `{checked}`, installed `{on, installer}`, commissioned `{on}`,
    /// acceptance_test `{result, on}`, training `{on, people, trainer}`,
    /// warranty `{starts_on, ends_on, service_agent}`, location
    /// `{department, room, custodian}`, status `{status}`). It supersedes
    /// what this phone shows as current. Resolves once durable; rejects
    /// with `Refused` and the reason otherwise.
    #[wasm_bindgen(js_name = recordUnitStep)]
    pub async fn record_unit_step(
        &mut self,
        shipment: String,
        event: String,
        now_ms: f64,
    ) -> Result<String, JsValue> {
        let id = shipment_id(&shipment)?;
        let new: NewUnitEvent = parse("unit step", &event)?;
        let saved = self
            .inner
            .record_unit_event(&id, new, millis(now_ms)?)
            .await
            .map_err(client_error)?;
        json(&saved)
    }

    /// The shipment's serialised units with every step recorded, and the
    /// counts, judged on the day of `now_ms`: JSON `{today, counts,
    /// units: [{line_id, serial, item, accessories, received, steps:
    /// {<step>: {current: [event], history: [event]}}}]}`.
    pub fn units(&self, shipment: String, now_ms: f64) -> Result<String, JsValue> {
        let id = shipment_id(&shipment)?;
        let shipment = self.inner.shipment(&id).map_err(client_error)?;
        let today = date_of(millis(now_ms)?);
        let units = shipment.units();
        let mut counts = UnitCounts::default();
        for u in &units {
            counts.add(u, &today);
        }
        json(&serde_json::json!({ "today": today, "counts": counts, "units": units }))
    }

    /// Records an attached file's reference (JSON `{id, file_kind:
    /// "photo" | "document" | "signature", receipt_id?, file: {sha256,
    /// media_type, size, width?, height?}, signer?: {name, role}, note}`).
    /// The page keeps the bytes durably first; this resolves once the
    /// reference is durable too, or rejects with `Refused` and the reason.
    #[wasm_bindgen(js_name = recordAttachment)]
    pub async fn record_attachment(
        &mut self,
        shipment: String,
        attachment: String,
        now_ms: f64,
    ) -> Result<String, JsValue> {
        let id = shipment_id(&shipment)?;
        let new: NewAttachment = parse("attachment", &attachment)?;
        let saved = self
            .inner
            .record_attachment(&id, new, millis(now_ms)?)
            .await
            .map_err(client_error)?;
        json(&saved)
    }

    /// Records that an attached file is removed, and why: the removal is
    /// itself a record, so nothing vanishes silently.
    #[wasm_bindgen(js_name = removeAttachment)]
    pub async fn remove_attachment(
        &mut self,
        shipment: String,
        id: String,
        removes: String,
        note: String,
        now_ms: f64,
    ) -> Result<String, JsValue> {
        let shipment = shipment_id(&shipment)?;
        let attachment_id = |what: &str, s: &str| {
            AttachmentId::parse(s).map_err(|e| error("BadInput", format!("{what}: {e}")))
        };
        let saved = self
            .inner
            .remove_attachment(
                &shipment,
                attachment_id("id", &id)?,
                attachment_id("removes", &removes)?,
                &note,
                millis(now_ms)?,
            )
            .await
            .map_err(client_error)?;
        json(&saved)
    }

    /// What is probably wrong with a receipt before it is recorded (same
    /// JSON as [`Engine::record_receipt`]), as a JSON array of warnings
    /// (`shared::warnings::ReceiptWarning`, tagged by `kind`); empty when
    /// nothing is. The person may still record it.
    #[wasm_bindgen(js_name = receiptWarnings)]
    pub fn receipt_warnings(&self, shipment: &str, receipt: String) -> Result<String, JsValue> {
        let id = shipment_id(shipment)?;
        let new: NewReceipt = parse("receipt", &receipt)?;
        let shipment = self.inner.shipment(&id).map_err(client_error)?;
        json(&aidsync_shared::warnings::receipt_warnings(&shipment, &new))
    }

    /// Whether a receipt (same JSON as [`Engine::record_receipt`]) needs a
    /// reason it does not have: JSON `{why, suggested}`, `why` null if it
    /// needs none (else in English; the page says it in the person's
    /// language; recording it would be refused for that reason), and
    /// `suggested` the reason that fits, if one does (short, over, damaged
    /// in transit…).
    #[wasm_bindgen(js_name = reasonNeeded)]
    pub fn reason_needed(&self, shipment: &str, receipt: String) -> Result<String, JsValue> {
        let id = shipment_id(shipment)?;
        let new: NewReceipt = parse("receipt", &receipt)?;
        let shipment = self.inner.shipment(&id).map_err(client_error)?;
        json(&serde_json::json!({
            "why": shipment.reason_needed(&new),
            "suggested": shipment.suggested_reason(&new),
        }))
    }

    /// Recovers a shipment the server refuses: rebuilds it from the server's
    /// copy and records this user's unsynced receipts and deliveries again.
    /// Returns JSON `{kept: [receipt], discarded: [{receipt, reason}],
    /// discarded_deliveries: [{delivery, reason}], discarded_unit_steps:
    /// [{event, reason}]}`; discarded records are
    /// gone from the phone, so show them to the person.
    #[wasm_bindgen(js_name = discardRefused)]
    pub async fn discard_refused(&mut self, shipment: String) -> Result<String, JsValue> {
        let id = shipment_id(&shipment)?;
        let recovery = self
            .inner
            .discard_refused(&id)
            .await
            .map_err(client_error)?;
        json(&serde_json::json!({
            "kept": recovery.kept,
            "kept_deliveries": recovery.kept_deliveries,
            "kept_unit_steps": recovery.kept_unit_events,
            "discarded": recovery.discarded.iter()
                .map(|(receipt, reason)| serde_json::json!({ "receipt": receipt, "reason": reason }))
                .collect::<Vec<_>>(),
            "discarded_deliveries": recovery.discarded_deliveries.iter()
                .map(|(delivery, reason)| serde_json::json!({ "delivery": delivery, "reason": reason }))
                .collect::<Vec<_>>(),
            "discarded_unit_steps": recovery.discarded_unit_events.iter()
                .map(|(event, reason)| serde_json::json!({ "event": event, "reason": reason }))
                .collect::<Vec<_>>(),
        }))
    }

    /// Records waiting for the server.
    pub fn pending(&mut self) -> u32 {
        u32::try_from(self.inner.pending()).unwrap_or(u32::MAX)
    }

    /// When the last sync succeeded (ms since epoch), if ever.
    #[wasm_bindgen(js_name = lastSyncAt)]
    pub fn last_sync_at(&self) -> Option<f64> {
        self.inner.meta().last_sync_at.map(|t| t as f64)
    }

    /// The body of the next `POST /api/v1/sync` (CBOR). Building it changes
    /// nothing, so a failed request needs no undo.
    #[wasm_bindgen(js_name = syncRequest)]
    pub fn sync_request(&mut self) -> Vec<u8> {
        encode(&self.inner.sync_request())
    }

    /// Everything waiting to sync as a signed file to carry by hand when
    /// there is no network for weeks (`shared::sync::carry`); `token` is
    /// the login's. A coordinator uploads it on the dashboard.
    #[wasm_bindgen(js_name = carriedFile)]
    pub fn carried_file(&mut self, token: &str, now_ms: f64) -> Result<Vec<u8>, JsValue> {
        self.inner
            .carried_file(token, millis(now_ms)?)
            .map_err(client_error)
    }

    /// Applies the server's answer (the CBOR body of a 200, 403, 404 or 422)
    /// and returns the report as JSON `{accepted, refused: [[id, reason]],
    /// updated, again}`; `again` asks for another sync straight away.
    #[wasm_bindgen(js_name = applyResponse)]
    pub async fn apply_response(&mut self, body: Vec<u8>, now_ms: f64) -> Result<String, JsValue> {
        let response: SyncResponse =
            decode(&body).map_err(|e| error("BadResponse", format!("sync response: {e}")))?;
        let report = self
            .inner
            .apply_response(response, millis(now_ms)?)
            .await
            .map_err(client_error)?;
        json(&serde_json::json!({
            "accepted": report.accepted,
            "refused": report.refused.iter().map(|(id, r)| (id.as_str(), r.as_str())).collect::<Vec<_>>(),
            "updated": report.updated,
            "again": report.again,
        }))
    }
}
