//! The phone's sync engine: local documents, the outbox and the cursor.
//!
//! The engine owns no clock, no network and no disk. Time is passed in;
//! [`ClientEngine::sync_request`] builds a request the platform sends however
//! it can (fetch in the browser, reqwest in the simulator), and
//! [`ClientEngine::apply_response`] applies the answer. State lives in a
//! [`ClientStore`] (IndexedDB on the phone, memory in simulations); every
//! edit is written there before the call returns, so "saved" means saved.
//!
//! The outbox is not a separate queue that could drift from the documents:
//! it is, per document, every change that is not an ancestor of the heads
//! the server last acknowledged. A lost response therefore costs nothing but
//! a re-send, which the server treats as a no-op.

use std::collections::BTreeMap;
use std::future::Future;

use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::protocol::{
    Changes, DocUpload, PROTOCOL_VERSION, SyncRequest, SyncResponse, UploadResult, heads_from_wire,
};
use crate::ids::{AttachmentId, DeviceId, ShipmentId, UserId};
use crate::model::{
    Attachment, Delivery, ModelError, NewAttachment, NewDelivery, NewReceipt, NewUnitEvent,
    Receipt, Recorder, Shipment, ShipmentDoc, StepKind, UnitEvent,
};
use crate::roles::{Action, Forbidden, Role};

/// Who this phone is, as issued by the server when the user logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user: UserId,
    pub role: Role,
    pub device: DeviceId,
    /// Hex automerge actor id; every change this phone makes is signed with it.
    pub actor: String,
}

/// The engine's small state besides documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub identity: Option<Identity>,
    pub cursor: u64,
    /// When the last sync succeeded (ms since epoch), for the UI.
    pub last_sync_at: Option<i64>,
}

/// One document as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocRecord {
    pub id: ShipmentId,
    /// `automerge::AutoCommit::save` output.
    pub doc: ByteBuf,
    pub server_heads: Vec<ByteBuf>,
    /// The server's last refusal of this document's changes, for the UI.
    pub refused: Option<String>,
}

/// Everything a store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub meta: Meta,
    pub docs: Vec<DocRecord>,
}

/// Durable storage for the engine. Each call must be durable when its future
/// resolves; the engine writes documents before the meta that refers to them,
/// so a crash between two calls never leaves the cursor ahead of the data.
pub trait ClientStore {
    type Error: std::error::Error + 'static;
    fn load(&mut self) -> impl Future<Output = Result<Stored, Self::Error>>;
    fn put_doc(&mut self, record: &DocRecord) -> impl Future<Output = Result<(), Self::Error>>;
    fn put_meta(&mut self, meta: &Meta) -> impl Future<Output = Result<(), Self::Error>>;
}

/// A store in memory, for simulations and tests. `fail_next_write` lets a
/// test play a full disk.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    pub stored: Stored,
    pub fail_next_write: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory store: simulated write failure")]
pub struct MemoryStoreError;

impl MemoryStore {
    fn write(&mut self) -> Result<(), MemoryStoreError> {
        if std::mem::take(&mut self.fail_next_write) {
            Err(MemoryStoreError)
        } else {
            Ok(())
        }
    }
}

impl ClientStore for MemoryStore {
    type Error = MemoryStoreError;

    async fn load(&mut self) -> Result<Stored, MemoryStoreError> {
        Ok(self.stored.clone())
    }

    async fn put_doc(&mut self, record: &DocRecord) -> Result<(), MemoryStoreError> {
        self.write()?;
        match self.stored.docs.iter_mut().find(|d| d.id == record.id) {
            Some(d) => *d = record.clone(),
            None => self.stored.docs.push(record.clone()),
        }
        Ok(())
    }

    async fn put_meta(&mut self, meta: &Meta) -> Result<(), MemoryStoreError> {
        self.write()?;
        self.stored.meta = meta.clone();
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError<E: std::error::Error + 'static> {
    #[error("no one is logged in on this phone")]
    NotRegistered,
    #[error("no shipment {0} on this phone")]
    UnknownShipment(ShipmentId),
    #[error(
        "{pending} record(s) of {user} have not reached the server yet; {user} must log in and sync before someone else logs in on this phone"
    )]
    OtherUsersRecordsPending { user: UserId, pending: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("the local store failed: {0}")]
    Store(#[source] E),
    #[error("stored data is unreadable: {0}")]
    CorruptStore(String),
    #[error("the server's response is unusable: {0}")]
    BadResponse(String),
    #[error("the server has refused nothing on shipment {0}: there is nothing to discard")]
    NothingRefused(ShipmentId),
}

struct LocalDoc {
    doc: ShipmentDoc,
    server_heads: Vec<ChangeHash>,
    refused: Option<String>,
}

impl LocalDoc {
    fn record(&mut self, id: &ShipmentId) -> DocRecord {
        DocRecord {
            id: id.clone(),
            doc: ByteBuf::from(self.doc.save()),
            server_heads: super::protocol::heads_to_wire(&self.server_heads),
            refused: self.refused.clone(),
        }
    }

    fn unacknowledged(&mut self) -> Vec<Change> {
        self.doc.automerge_mut().get_changes(&self.server_heads)
    }
}

/// What one sync did, for the UI and the simulator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Documents whose upload the server stored.
    pub accepted: usize,
    /// Documents refused, with the server's reason.
    pub refused: Vec<(ShipmentId, String)>,
    /// Documents that arrived or changed.
    pub updated: usize,
    /// The server asked for a full re-send: sync again now.
    pub again: bool,
}

/// What [`ClientEngine::discard_refused`] did with a shipment's unsynced
/// receipts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Receipts recorded again on the server's copy; they sync next time.
    pub kept: Vec<Receipt>,
    /// Receipts the model no longer accepts, with the reason; they are gone
    /// from this phone, so the UI must show them for the person to re-check.
    pub discarded: Vec<(Receipt, String)>,
    /// Deliveries recorded again on the server's copy, before the receipts
    /// that may name them.
    pub kept_deliveries: Vec<Delivery>,
    /// Deliveries the model no longer accepts, with the reason.
    pub discarded_deliveries: Vec<(Delivery, String)>,
    /// Units' steps recorded again, after the receipts that may have
    /// counted their serials; each supersedes what the server's copy shows.
    pub kept_unit_events: Vec<UnitEvent>,
    /// Units' steps the model no longer accepts, with the reason.
    pub discarded_unit_events: Vec<(UnitEvent, String)>,
}

/// The phone's sync engine over a store `S`.
pub struct ClientEngine<S: ClientStore> {
    store: S,
    meta: Meta,
    docs: BTreeMap<ShipmentId, LocalDoc>,
}

impl<S: ClientStore> ClientEngine<S> {
    /// Opens the engine over whatever `store` holds.
    pub async fn open(mut store: S) -> Result<Self, ClientError<S::Error>> {
        let stored = store.load().await.map_err(ClientError::Store)?;
        let actor = stored
            .meta
            .identity
            .as_ref()
            .map(|i| parse_actor(&i.actor))
            .transpose()?;
        let mut docs = BTreeMap::new();
        for record in stored.docs {
            let mut doc = ShipmentDoc::load(&record.doc)
                .map_err(|e| ClientError::CorruptStore(format!("shipment {}: {e}", record.id)))?;
            if let Some(actor) = &actor {
                doc.set_actor(actor.clone());
            }
            let server_heads = heads_from_wire(&record.server_heads)
                .map_err(|e| ClientError::CorruptStore(e.to_string()))?;
            docs.insert(
                record.id,
                LocalDoc {
                    doc,
                    server_heads,
                    refused: record.refused,
                },
            );
        }
        Ok(ClientEngine {
            store,
            meta: stored.meta,
            docs,
        })
    }

    /// Sets who this phone is (after logging in). Unsynced changes are kept:
    /// they were signed by the previous device's actor, which the server
    /// still accepts from the same user and attributes to that device.
    ///
    /// Someone else logging in while records of the previous user still
    /// wait is refused: the server only accepts records from the person
    /// who made them, so they would be stuck behind the new login.
    pub async fn set_identity(&mut self, identity: Identity) -> Result<(), ClientError<S::Error>> {
        let actor = parse_actor(&identity.actor)?;
        if let Some(current) = self.meta.identity.clone()
            && current.user != identity.user
        {
            let pending = self.pending();
            if pending > 0 {
                return Err(ClientError::OtherUsersRecordsPending {
                    user: current.user,
                    pending,
                });
            }
        }
        let mut meta = self.meta.clone();
        meta.identity = Some(identity);
        self.store
            .put_meta(&meta)
            .await
            .map_err(ClientError::Store)?;
        self.meta = meta;
        for local in self.docs.values_mut() {
            local.doc.set_actor(actor.clone());
        }
        Ok(())
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.meta.identity.as_ref()
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Ids of every shipment on this phone.
    pub fn shipment_ids(&self) -> impl Iterator<Item = &ShipmentId> {
        self.docs.keys()
    }

    /// Reads one shipment.
    pub fn shipment(&self, id: &ShipmentId) -> Result<Shipment, ClientError<S::Error>> {
        let local = self
            .docs
            .get(id)
            .ok_or_else(|| ClientError::UnknownShipment(id.clone()))?;
        Ok(local.doc.read()?)
    }

    /// The automerge document of a shipment (for comparisons in tests).
    pub fn document(&self, id: &ShipmentId) -> Option<&AutoCommit> {
        self.docs.get(id).map(|l| l.doc.automerge())
    }

    /// The server's last refusal of this shipment's changes, if any.
    pub fn refusal(&self, id: &ShipmentId) -> Option<&str> {
        self.docs.get(id).and_then(|l| l.refused.as_deref())
    }

    /// Records a receipt and makes it durable before returning.
    pub async fn record_receipt(
        &mut self,
        shipment: &ShipmentId,
        new: NewReceipt,
        now_ms: i64,
    ) -> Result<Receipt, ClientError<S::Error>> {
        self.edit_durably(shipment, |doc, who| doc.record_receipt(new, who, now_ms))
            .await
    }

    /// Records an attached file (its reference: the bytes stay in the
    /// app's own storage until they upload) and makes it durable before
    /// returning.
    pub async fn record_attachment(
        &mut self,
        shipment: &ShipmentId,
        new: NewAttachment,
        now_ms: i64,
    ) -> Result<Attachment, ClientError<S::Error>> {
        self.edit_durably(shipment, |doc, who| doc.record_attachment(new, who, now_ms))
            .await
    }

    /// Records a delivery (a truck's arrival and its papers) and makes it
    /// durable before returning.
    pub async fn record_delivery(
        &mut self,
        shipment: &ShipmentId,
        new: NewDelivery,
        now_ms: i64,
    ) -> Result<Delivery, ClientError<S::Error>> {
        self.edit_durably(shipment, |doc, who| doc.record_delivery(new, who, now_ms))
            .await
    }

    /// Records one step of a serialised unit's life (installed, tested,
    /// status…) and makes it durable before returning.
    pub async fn record_unit_event(
        &mut self,
        shipment: &ShipmentId,
        new: NewUnitEvent,
        now_ms: i64,
    ) -> Result<UnitEvent, ClientError<S::Error>> {
        // The hand-over is a coordinator's, on the dashboard: refused here
        // rather than by the server, which would block every later record.
        if new.step.kind() == StepKind::HandedOver {
            let identity = self
                .meta
                .identity
                .as_ref()
                .ok_or(ClientError::NotRegistered)?;
            identity.role.require(Action::HandOverUnits)?;
        }
        self.edit_durably(shipment, |doc, who| doc.record_unit_event(new, who, now_ms))
            .await
    }

    /// Records the removal of an attached file, with why.
    pub async fn remove_attachment(
        &mut self,
        shipment: &ShipmentId,
        id: AttachmentId,
        removes: AttachmentId,
        note: &str,
        now_ms: i64,
    ) -> Result<Attachment, ClientError<S::Error>> {
        self.edit_durably(shipment, |doc, who| {
            doc.remove_attachment(id, removes, note, who, now_ms)
        })
        .await
    }

    /// Applies a receiver's edit to the local document and stores it
    /// before returning; if the store fails, the edit is undone (not
    /// durable, so not recorded: the UI must not say "saved").
    async fn edit_durably<T>(
        &mut self,
        shipment: &ShipmentId,
        edit: impl FnOnce(&mut ShipmentDoc, &Recorder) -> Result<T, ModelError>,
    ) -> Result<T, ClientError<S::Error>> {
        let identity = self
            .meta
            .identity
            .as_ref()
            .ok_or(ClientError::NotRegistered)?;
        identity.role.require(Action::RecordReceipts)?;
        let who = Recorder {
            user: identity.user.clone(),
            device: identity.device.clone(),
        };
        let local = self
            .docs
            .get_mut(shipment)
            .ok_or_else(|| ClientError::UnknownShipment(shipment.clone()))?;
        let before = local.doc.clone();
        let done = edit(&mut local.doc, &who)?;
        let record = local.record(shipment);
        if let Err(e) = self.store.put_doc(&record).await {
            local.doc = before;
            return Err(ClientError::Store(e));
        }
        Ok(done)
    }

    /// Recovers a shipment whose upload the server refuses. A refused change
    /// blocks every later change of this phone on the document (they depend
    /// on it), so the only way forward is to rebuild: start again from the
    /// server's copy and record each unsynced receipt of this user anew,
    /// keeping those the model still accepts there. Every receipt is
    /// accounted for in the result, and the rebuilt document is durable
    /// before this returns.
    pub async fn discard_refused(
        &mut self,
        shipment: &ShipmentId,
    ) -> Result<Recovery, ClientError<S::Error>> {
        let identity = self
            .meta
            .identity
            .clone()
            .ok_or(ClientError::NotRegistered)?;
        let actor = parse_actor(&identity.actor)?;
        let local = self
            .docs
            .get_mut(shipment)
            .ok_or_else(|| ClientError::UnknownShipment(shipment.clone()))?;
        if local.refused.is_none() || local.server_heads.is_empty() {
            return Err(ClientError::NothingRefused(shipment.clone()));
        }
        let corrupt = |e: &dyn std::fmt::Display| {
            ClientError::CorruptStore(format!("shipment {shipment}: {e}"))
        };
        let mut rebuilt = ShipmentDoc::from_automerge(
            local
                .doc
                .automerge_mut()
                .fork_at(&local.server_heads)
                .map_err(|e| corrupt(&e))?,
        );
        rebuilt.set_actor(actor);
        let on_server = rebuilt.read()?;

        // The merged document may itself be what the model refuses, so the
        // receipts are read where each unsynced change was made: the phone
        // checked that state before saving it.
        let mut unsynced: BTreeMap<_, Receipt> = BTreeMap::new();
        let mut unsynced_deliveries: BTreeMap<_, Delivery> = BTreeMap::new();
        let mut unsynced_unit_events: BTreeMap<_, UnitEvent> = BTreeMap::new();
        for change in local.unacknowledged() {
            let Ok(at) = local.doc.automerge_mut().fork_at(&[change.hash()]) else {
                continue;
            };
            let Ok(state) = crate::model::read_shipment(&at) else {
                continue;
            };
            for (id, receipt) in state.receipts {
                if !on_server.receipts.contains_key(&id) {
                    unsynced.insert(id, receipt);
                }
            }
            for (id, delivery) in state.deliveries {
                if !on_server.deliveries.contains_key(&id) {
                    unsynced_deliveries.insert(id, delivery);
                }
            }
            for (id, event) in state.unit_events {
                if !on_server.unit_events.contains_key(&id) {
                    unsynced_unit_events.insert(id, event);
                }
            }
        }
        let mut unsynced: Vec<Receipt> = unsynced.into_values().collect();
        unsynced.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));

        let who = Recorder {
            user: identity.user.clone(),
            device: identity.device.clone(),
        };
        let mut recovery = Recovery::default();
        let mut unsynced_deliveries: Vec<Delivery> = unsynced_deliveries.into_values().collect();
        unsynced_deliveries.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
        for delivery in unsynced_deliveries {
            if delivery.recorded_by != identity.user {
                let reason = format!(
                    "recorded by {}, not by {}",
                    delivery.recorded_by, identity.user
                );
                recovery.discarded_deliveries.push((delivery, reason));
                continue;
            }
            match rebuilt.record_delivery((&delivery).into(), &who, delivery.recorded_at) {
                Ok(kept) => recovery.kept_deliveries.push(kept),
                Err(e) => recovery
                    .discarded_deliveries
                    .push((delivery, e.to_string())),
            }
        }
        for receipt in unsynced {
            if receipt.recorded_by != identity.user {
                // Not possible through `set_identity`, but never re-sign
                // someone else's record as this user's.
                let reason = format!(
                    "recorded by {}, not by {}",
                    receipt.recorded_by, identity.user
                );
                recovery.discarded.push((receipt, reason));
                continue;
            }
            match rebuilt.record_receipt_again(&receipt, &who) {
                Ok(kept) => recovery.kept.push(kept),
                Err(e) => recovery.discarded.push((receipt, e.to_string())),
            }
        }
        let mut unsynced_unit_events: Vec<UnitEvent> = unsynced_unit_events.into_values().collect();
        unsynced_unit_events.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
        for event in unsynced_unit_events {
            if event.recorded_by != identity.user {
                let reason = format!(
                    "recorded by {}, not by {}",
                    event.recorded_by, identity.user
                );
                recovery.discarded_unit_events.push((event, reason));
                continue;
            }
            if event.step.kind() == StepKind::HandedOver
                && let Err(e) = identity.role.require(Action::HandOverUnits)
            {
                recovery.discarded_unit_events.push((event, e.to_string()));
                continue;
            }
            match rebuilt.record_unit_event_again(&event, &who) {
                Ok(kept) => recovery.kept_unit_events.push(kept),
                Err(e) => recovery.discarded_unit_events.push((event, e.to_string())),
            }
        }

        let mut replacement = LocalDoc {
            doc: rebuilt,
            server_heads: local.server_heads.clone(),
            refused: None,
        };
        let record = replacement.record(shipment);
        self.store
            .put_doc(&record)
            .await
            .map_err(ClientError::Store)?;
        *local = replacement;
        Ok(recovery)
    }

    /// Changes not yet acknowledged by the server, over all documents. Each
    /// receipt is one change, so this is what the UI shows as "waiting".
    pub fn pending(&mut self) -> usize {
        self.docs
            .values_mut()
            .map(|l| l.unacknowledged().len())
            .sum()
    }

    /// The request for the next sync: the cursor and every unacknowledged
    /// change. Building it changes nothing, so a failed send needs no undo.
    pub fn sync_request(&mut self) -> SyncRequest {
        let docs = self
            .docs
            .iter_mut()
            .filter_map(|(id, local)| {
                let changes = local.unacknowledged();
                (!changes.is_empty()).then(|| DocUpload {
                    id: id.clone(),
                    changes: Changes::chunks(&changes),
                })
            })
            .collect();
        SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor: self.meta.cursor,
            docs,
        }
    }

    /// Everything waiting to sync, as a signed file to carry by hand
    /// ([`super::carry`]): the request [`Self::sync_request`] would send,
    /// signed with `token`, this login's, which only this phone and
    /// (hashed) the server know. Changes nothing: the records stay waiting
    /// until a sync acknowledges them, which after an import finds them
    /// stored already.
    pub fn carried_file(
        &mut self,
        token: &str,
        now_ms: i64,
    ) -> Result<Vec<u8>, ClientError<S::Error>> {
        let identity = self
            .meta
            .identity
            .clone()
            .ok_or(ClientError::NotRegistered)?;
        let pending = self.pending() as u64;
        let request = super::protocol::encode(&self.sync_request());
        Ok(super::carry::CarriedFile::write(
            identity.device,
            identity.user,
            now_ms,
            pending,
            request,
            &super::carry::signing_key(token),
        ))
    }

    /// Applies the server's answer to a request from [`Self::sync_request`].
    /// Documents are persisted before the cursor, so a crash part-way only
    /// means the next sync fetches some changes again.
    pub async fn apply_response(
        &mut self,
        response: SyncResponse,
        now_ms: i64,
    ) -> Result<SyncReport, ClientError<S::Error>> {
        let actor = self
            .meta
            .identity
            .as_ref()
            .map(|i| parse_actor(&i.actor))
            .transpose()?;
        let mut report = SyncReport::default();
        for down in response.docs {
            let bad = |e: &dyn std::fmt::Display| {
                ClientError::BadResponse(format!("shipment {}: {e}", down.id))
            };
            let server_heads = heads_from_wire(&down.heads).map_err(|e| bad(&e))?;
            let changes = down.changes.decode().map_err(|e| bad(&e))?;
            let snapshot = match &down.snapshot {
                Some(bytes) => Some(AutoCommit::load(bytes).map_err(|e| bad(&e))?),
                None => None,
            };

            let local = match self.docs.entry(down.id.clone()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let Some(snapshot) = &snapshot else {
                        return Err(bad(&"changes for a document this phone does not have"));
                    };
                    let mut doc = ShipmentDoc::from_automerge(snapshot.clone());
                    if let Some(actor) = &actor {
                        doc.set_actor(actor.clone());
                    }
                    v.insert(LocalDoc {
                        doc,
                        server_heads: Vec::new(),
                        refused: None,
                    })
                }
            };
            let am = local.doc.automerge_mut();
            if let Some(mut snapshot) = snapshot {
                am.merge(&mut snapshot).map_err(|e| bad(&e))?;
            }
            am.apply_changes(changes).map_err(|e| bad(&e))?;

            match &down.upload {
                Some(UploadResult::MissingDependencies) => {
                    // Forget what we thought the server had: the next request
                    // carries every change of this document.
                    local.server_heads.clear();
                    report.again = true;
                }
                Some(UploadResult::Refused { reason, .. }) => {
                    local.refused = Some(reason.clone());
                    report.refused.push((down.id.clone(), reason.clone()));
                }
                Some(UploadResult::NotFound) => {
                    let reason = "the server does not know this shipment".to_string();
                    local.refused = Some(reason.clone());
                    report.refused.push((down.id.clone(), reason));
                }
                Some(UploadResult::Accepted { .. }) => {
                    local.refused = None;
                    report.accepted += 1;
                }
                None => {}
            }
            let has_all = server_heads
                .iter()
                .all(|h| am.get_change_by_hash(h).is_some());
            if has_all && !matches!(down.upload, Some(UploadResult::MissingDependencies)) {
                local.server_heads = server_heads;
            }
            let record = local.record(&down.id);
            self.store
                .put_doc(&record)
                .await
                .map_err(ClientError::Store)?;
            report.updated += 1;
        }
        if response.reset {
            // The server lost data: whatever it no longer has is pending
            // again because its heads (just applied) no longer cover it.
            report.again = true;
        }
        let mut meta = self.meta.clone();
        meta.cursor = response.cursor;
        meta.last_sync_at = Some(now_ms);
        self.store
            .put_meta(&meta)
            .await
            .map_err(ClientError::Store)?;
        self.meta = meta;
        Ok(report)
    }
}

fn parse_actor<E: std::error::Error + 'static>(hex: &str) -> Result<ActorId, ClientError<E>> {
    ActorId::try_from(hex).map_err(|e| ClientError::CorruptStore(format!("actor id: {e}")))
}
