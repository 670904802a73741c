//! Writing shipment documents: creation and the few edits the model allows.
//!
//! Every edit is one automerge change, committed with the time the caller
//! passes in, and is checked with the same rules the reader applies before it
//! touches the document: a phone never saves what the server would refuse.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use super::keys as k;
use super::read::read_shipment;
use super::types::*;
use super::units::{NewUnitEvent, UnitEvent, UnitStep};
use crate::ids::{AttachmentId, ReviewId, UserId};

/// How a receipt's reason reads in its note when the document predates
/// reasons (schema 2 and earlier): the receiver chose one, and it must not
/// be lost while the server has not upgraded the document yet.
fn reason_in_note(reason: Reason, note: &str) -> String {
    if note.is_empty() {
        format!("[{}]", reason.as_str())
    } else {
        format!("[{}] {note}", reason.as_str())
    }
}

/// One shipment's automerge document.
#[derive(Debug, Clone)]
pub struct ShipmentDoc {
    doc: AutoCommit,
}

fn am(e: automerge::AutomergeError) -> ModelError {
    ModelError::Corrupt(e.to_string())
}

/// A review as a coordinator writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewReview {
    pub id: ReviewId,
    pub note: String,
    #[serde(default)]
    pub verdict: Option<Verdict>,
    #[serde(default)]
    pub resolves: Vec<crate::ids::ReceiptId>,
}

impl ShipmentDoc {
    /// Creates the document with every container it will ever have, in one
    /// change by `actor`.
    pub fn create(
        new: &NewShipment,
        created_by: &UserId,
        actor: ActorId,
        now_ms: i64,
    ) -> Result<Self, ModelError> {
        let header = Header {
            id: new.id.clone(),
            donor: new.donor.clone(),
            programme: new.programme.clone(),
            reference: new.reference.clone(),
            destination_facility: new.destination_facility.clone(),
            expected_on: new.expected_on.clone(),
            created_by: created_by.clone(),
            created_at: now_ms,
            note: new.note.clone(),
        };
        header.check()?;
        check_manifest_size(new.lines.iter())?;
        let mut seen = std::collections::BTreeSet::new();
        for line in &new.lines {
            line.check()?;
            if !seen.insert(&line.id) {
                return Err(ModelError::AlreadyExists {
                    kind: "line",
                    id: line.id.to_string(),
                });
            }
        }

        let mut doc = AutoCommit::new().with_actor(actor);
        let write = |doc: &mut AutoCommit| -> Result<(), automerge::AutomergeError> {
            doc.put(ROOT, k::SCHEMA, ScalarValue::Uint(SCHEMA_VERSION))?;
            let h = doc.put_object(ROOT, k::SHIPMENT, ObjType::Map)?;
            doc.put(&h, k::ID, header.id.as_str())?;
            doc.put(&h, k::DONOR, header.donor.as_str())?;
            doc.put(&h, k::PROGRAMME, header.programme.as_str())?;
            doc.put(&h, k::REFERENCE, header.reference.as_str())?;
            doc.put(
                &h,
                k::DESTINATION_FACILITY,
                header.destination_facility.as_str(),
            )?;
            match &header.expected_on {
                Some(d) => doc.put(&h, k::EXPECTED_ON, d.as_str())?,
                None => doc.put(&h, k::EXPECTED_ON, ScalarValue::Null)?,
            }
            doc.put(&h, k::CREATED_BY, header.created_by.as_str())?;
            doc.put(&h, k::CREATED_AT, header.created_at)?;
            doc.put(&h, k::NOTE, header.note.as_str())?;
            let lines = doc.put_object(ROOT, k::LINES, ObjType::Map)?;
            for line in &new.lines {
                write_line(doc, &lines, line, SCHEMA_VERSION)?;
            }
            doc.put_object(ROOT, k::RECEIPTS, ObjType::Map)?;
            doc.put_object(ROOT, k::REVIEWS, ObjType::Map)?;
            doc.put_object(ROOT, k::ATTACHMENTS, ObjType::Map)?;
            doc.put_object(ROOT, k::DELIVERIES, ObjType::Map)?;
            doc.put_object(ROOT, k::UNIT_EVENTS, ObjType::Map)?;
            Ok(())
        };
        write(&mut doc).map_err(am)?;
        doc.commit_with(CommitOptions::default().with_time(now_ms));
        Ok(ShipmentDoc { doc })
    }

    /// Loads a saved document. Only the encoding is checked here; call
    /// [`Self::read`] to validate the content.
    pub fn load(bytes: &[u8]) -> Result<Self, ModelError> {
        let doc = AutoCommit::load(bytes).map_err(am)?;
        Ok(ShipmentDoc { doc })
    }

    pub fn from_automerge(doc: AutoCommit) -> Self {
        ShipmentDoc { doc }
    }

    pub fn automerge(&self) -> &AutoCommit {
        &self.doc
    }

    pub fn automerge_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub fn into_automerge(self) -> AutoCommit {
        self.doc
    }

    /// Sets the actor id this replica's future changes are signed with.
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Reads and validates the current state.
    pub fn read(&self) -> Result<Shipment, ModelError> {
        read_shipment(&self.doc)
    }

    /// The change that created each receipt, by receipt id: lets the server
    /// say when a receipt reached it, from its append-only change log.
    pub fn receipt_origins(&self) -> std::collections::BTreeMap<crate::ids::ReceiptId, ChangeHash> {
        let mut out = std::collections::BTreeMap::new();
        let Ok(receipts) = container(&self.doc, k::RECEIPTS) else {
            return out;
        };
        for key in self.doc.keys(&receipts) {
            let Ok(id) = key.parse() else { continue };
            if let Some(hash) = self.origin_in(&receipts, &key) {
                out.insert(id, hash);
            }
        }
        out
    }

    /// The change that created one receipt ([`Self::receipt_origins`]).
    pub fn receipt_origin(&self, id: &crate::ids::ReceiptId) -> Option<ChangeHash> {
        let receipts = container(&self.doc, k::RECEIPTS).ok()?;
        self.origin_in(&receipts, id.as_str())
    }

    fn origin_in(&self, receipts: &ObjId, key: &str) -> Option<ChangeHash> {
        match self.doc.get(receipts, key) {
            Ok(Some((_, obj))) => self.doc.hash_for_opid(&obj),
            _ => None,
        }
    }

    /// Records a receipt as one change. Refused, leaving the document as it
    /// was, if the receipt breaks any rule (unknown line, zero quantity, a
    /// short count without a reason…).
    pub fn record_receipt(
        &mut self,
        new: NewReceipt,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<Receipt, ModelError> {
        let mut current = self.read()?;
        self.record_receipt_on(&mut current, new, who, now_ms)
    }

    /// [`Self::record_receipt`] for a caller that keeps the document's
    /// model at hand: `current` must be what the document reads as, and is
    /// kept so. Reading a large document costs far more than a receipt.
    pub fn record_receipt_on(
        &mut self,
        current: &mut Shipment,
        new: NewReceipt,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<Receipt, ModelError> {
        if let Some(why) = current.reason_needed(&new) {
            return Err(ModelError::ReasonRequired {
                receipt: new.id,
                why,
            });
        }
        self.put_receipt(current, new, who, now_ms)
    }

    /// Records anew, signed by `who`, a receipt recorded earlier on another
    /// copy of the document (recovering unsynced work). Whether its
    /// quantity needed a reason was judged against what its recorder saw
    /// then, so only the rules of the receipt itself apply again.
    pub fn record_receipt_again(
        &mut self,
        receipt: &Receipt,
        who: &Recorder,
    ) -> Result<Receipt, ModelError> {
        let mut current = self.read()?;
        self.put_receipt(&mut current, receipt.into(), who, receipt.recorded_at)
    }

    fn put_receipt(
        &mut self,
        current: &mut Shipment,
        new: NewReceipt,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<Receipt, ModelError> {
        if current.receipts.contains_key(&new.id) {
            return Err(ModelError::AlreadyExists {
                kind: "receipt",
                id: new.id.to_string(),
            });
        }
        let staged = current.schema >= 3;
        if !staged && new.delivery_id.is_some() {
            return Err(ModelError::NoDeliveries {
                schema: current.schema,
            });
        }
        let note = match new.reason {
            Some(reason) if !staged => reason_in_note(reason, &new.note),
            _ => new.note,
        };
        let receipt = Receipt {
            id: new.id,
            line_id: new.line_id,
            quantity: new.quantity,
            condition: new.condition,
            serials: new.serials,
            note,
            recorded_by: who.user.clone(),
            device_id: who.device.clone(),
            recorded_at: now_ms,
            voids: new.voids,
            stage: staged.then(|| new.stage.unwrap_or(Stage::Provisional)),
            reason: new.reason.filter(|_| staged),
            delivery_id: new.delivery_id,
        };
        receipt.check(&current.lines, &current.receipts, &current.deliveries)?;
        self.change(now_ms, |doc| {
            let receipts = container(doc, k::RECEIPTS)?;
            let r = doc.put_object(&receipts, receipt.id.as_str(), ObjType::Map)?;
            doc.put(&r, k::LINE_ID, receipt.line_id.as_str())?;
            doc.put(&r, k::QUANTITY, receipt.quantity)?;
            doc.put(&r, k::CONDITION, receipt.condition.as_str())?;
            put_strings(doc, &r, k::SERIALS, &receipt.serials)?;
            doc.put(&r, k::NOTE, receipt.note.as_str())?;
            doc.put(&r, k::RECORDED_BY, receipt.recorded_by.as_str())?;
            doc.put(&r, k::DEVICE_ID, receipt.device_id.as_str())?;
            doc.put(&r, k::RECORDED_AT, receipt.recorded_at)?;
            if let Some(v) = &receipt.voids {
                doc.put(&r, k::VOIDS, v.as_str())?;
            }
            if let Some(stage) = receipt.stage {
                doc.put(&r, k::STAGE, stage.as_str())?;
            }
            if let Some(reason) = receipt.reason {
                doc.put(&r, k::REASON, reason.as_str())?;
            }
            if let Some(d) = &receipt.delivery_id {
                doc.put(&r, k::DELIVERY_ID, d.as_str())?;
            }
            Ok(())
        })?;
        current.receipts.insert(receipt.id.clone(), receipt.clone());
        Ok(receipt)
    }

    /// Brings a document of an older schema to [`SCHEMA_VERSION`] in one
    /// change (adds the maps later schemas introduced: `attachments` in 2,
    /// `deliveries` in 3, `unit_events` in 4), or returns `false` if it is current already.
    /// Only the server upgrades, under the document's write lock, so there
    /// is one of each map: two replicas that each created one would hide
    /// one's entries behind the other's.
    pub fn upgrade(&mut self, now_ms: i64) -> Result<bool, ModelError> {
        let current = self.read()?;
        if current.schema >= SCHEMA_VERSION {
            return Ok(false);
        }
        self.change(now_ms, |doc| {
            if current.schema < 2 {
                doc.put_object(ROOT, k::ATTACHMENTS, ObjType::Map)?;
            }
            if current.schema < 3 {
                doc.put_object(ROOT, k::DELIVERIES, ObjType::Map)?;
            }
            if current.schema < 4 {
                doc.put_object(ROOT, k::UNIT_EVENTS, ObjType::Map)?;
            }
            doc.put(ROOT, k::SCHEMA, ScalarValue::Uint(SCHEMA_VERSION))
        })?;
        Ok(true)
    }

    /// Records a delivery (a truck's arrival and its papers) as one change.
    /// Refused, leaving the document as it was, if it breaks a rule or the
    /// document predates deliveries.
    pub fn record_delivery(
        &mut self,
        new: NewDelivery,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<Delivery, ModelError> {
        let current = self.read()?;
        if current.schema < 3 {
            return Err(ModelError::NoDeliveries {
                schema: current.schema,
            });
        }
        if current.deliveries.contains_key(&new.id) {
            return Err(ModelError::AlreadyExists {
                kind: "delivery",
                id: new.id.to_string(),
            });
        }
        let d = Delivery {
            id: new.id,
            waybill: new.waybill,
            transporter: new.transporter,
            vehicle: new.vehicle,
            seal: new.seal,
            seal_number: new.seal_number,
            packages_expected: new.packages_expected,
            packages_received: new.packages_received,
            arrived_at: new.arrived_at,
            note: new.note,
            recorded_by: who.user.clone(),
            device_id: who.device.clone(),
            recorded_at: now_ms,
            replaces: new.replaces,
        };
        d.check(&current.deliveries)?;
        self.change(now_ms, |doc| {
            let deliveries = container(doc, k::DELIVERIES)?;
            let m = doc.put_object(&deliveries, d.id.as_str(), ObjType::Map)?;
            doc.put(&m, k::WAYBILL, d.waybill.as_str())?;
            doc.put(&m, k::TRANSPORTER, d.transporter.as_str())?;
            doc.put(&m, k::VEHICLE, d.vehicle.as_str())?;
            doc.put(&m, k::SEAL, d.seal.as_str())?;
            doc.put(&m, k::SEAL_NUMBER, d.seal_number.as_str())?;
            if let Some(n) = d.packages_expected {
                doc.put(&m, k::PACKAGES_EXPECTED, n)?;
            }
            if let Some(n) = d.packages_received {
                doc.put(&m, k::PACKAGES_RECEIVED, n)?;
            }
            doc.put(&m, k::ARRIVED_AT, d.arrived_at)?;
            doc.put(&m, k::NOTE, d.note.as_str())?;
            doc.put(&m, k::RECORDED_BY, d.recorded_by.as_str())?;
            doc.put(&m, k::DEVICE_ID, d.device_id.as_str())?;
            doc.put(&m, k::RECORDED_AT, d.recorded_at)?;
            if let Some(r) = &d.replaces {
                doc.put(&m, k::REPLACES, r.as_str())?;
            }
            Ok(())
        })?;
        Ok(d)
    }

    /// Records one step of a serialised unit's life (installed, tested,
    /// moved…) as one change. It supersedes every event of the same unit
    /// and step this replica sees as current, so a later record replaces
    /// the value and only concurrent ones conflict. Refused, leaving the
    /// document as it was, if it breaks a rule (a serial the line neither
    /// expects nor has received, a hand-over of a unit not accepted, a
    /// failed test without a note…) or the document predates unit records.
    pub fn record_unit_event(
        &mut self,
        new: NewUnitEvent,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<UnitEvent, ModelError> {
        let current = self.read()?;
        let unit = super::units::UnitKey {
            line_id: new.line_id.clone(),
            serial: new.serial.clone(),
        };
        let supersedes = current.current_unit_events(&unit, new.step.kind());
        self.put_unit_event(&current, new, supersedes, who, now_ms)
    }

    /// Records an unsynced unit event again on a rebuilt document (see
    /// `ClientEngine::discard_refused`), superseding what it superseded
    /// when first recorded, where that is there: a step recorded again
    /// must not hide a colleague's concurrent one its recorder never saw.
    pub fn record_unit_event_again(
        &mut self,
        event: &UnitEvent,
        who: &Recorder,
    ) -> Result<UnitEvent, ModelError> {
        let current = self.read()?;
        let supersedes = event
            .supersedes
            .iter()
            .filter(|id| current.unit_events.contains_key(*id))
            .cloned()
            .collect();
        self.put_unit_event(&current, event.into(), supersedes, who, event.recorded_at)
    }

    fn put_unit_event(
        &mut self,
        current: &Shipment,
        new: NewUnitEvent,
        supersedes: Vec<crate::ids::UnitEventId>,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<UnitEvent, ModelError> {
        if current.schema < 4 {
            return Err(ModelError::NoUnitRecords {
                schema: current.schema,
            });
        }
        if current.unit_events.contains_key(&new.id) {
            return Err(ModelError::AlreadyExists {
                kind: "unit event",
                id: new.id.to_string(),
            });
        }
        let event = UnitEvent {
            supersedes,
            id: new.id,
            line_id: new.line_id,
            serial: new.serial,
            step: new.step,
            note: new.note,
            recorded_by: who.user.clone(),
            device_id: who.device.clone(),
            recorded_at: now_ms,
        };
        event.check(&current.lines, &current.unit_events)?;
        current.check_new_unit_event(&event)?;
        let e = &event;
        self.change(now_ms, |doc| {
            let events = container(doc, k::UNIT_EVENTS)?;
            let m = doc.put_object(&events, e.id.as_str(), ObjType::Map)?;
            doc.put(&m, k::LINE_ID, e.line_id.as_str())?;
            doc.put(&m, k::SERIAL, e.serial.as_str())?;
            doc.put(&m, k::STEP, e.step.kind().as_str())?;
            match &e.step {
                UnitStep::Checklist { checked } => put_strings(doc, &m, k::CHECKED, checked)?,
                UnitStep::Installed { on, installer } => {
                    doc.put(&m, k::ON, on.as_str())?;
                    doc.put(&m, k::INSTALLER, installer.as_str())?;
                }
                UnitStep::Commissioned { on } => doc.put(&m, k::ON, on.as_str())?,
                UnitStep::AcceptanceTest { result, on } => {
                    doc.put(&m, k::RESULT, result.as_str())?;
                    doc.put(&m, k::ON, on.as_str())?;
                }
                UnitStep::Training {
                    on,
                    people,
                    trainer,
                } => {
                    doc.put(&m, k::ON, on.as_str())?;
                    doc.put(&m, k::PEOPLE, *people)?;
                    doc.put(&m, k::TRAINER, trainer.as_str())?;
                }
                UnitStep::Warranty {
                    starts_on,
                    ends_on,
                    service_agent,
                } => {
                    doc.put(&m, k::STARTS_ON, starts_on.as_str())?;
                    doc.put(&m, k::ENDS_ON, ends_on.as_str())?;
                    doc.put(&m, k::SERVICE_AGENT, service_agent.as_str())?;
                }
                UnitStep::Location {
                    department,
                    room,
                    custodian,
                } => {
                    doc.put(&m, k::DEPARTMENT, department.as_str())?;
                    doc.put(&m, k::ROOM, room.as_str())?;
                    doc.put(&m, k::CUSTODIAN, custodian.as_str())?;
                }
                UnitStep::Status { status } => doc.put(&m, k::STATUS, status.as_str())?,
                UnitStep::HandedOver { on, asset_number } => {
                    doc.put(&m, k::ON, on.as_str())?;
                    doc.put(&m, k::ASSET_NUMBER, asset_number.as_str())?;
                }
            }
            let supersedes: Vec<String> = e.supersedes.iter().map(ToString::to_string).collect();
            put_strings(doc, &m, k::SUPERSEDES, &supersedes)?;
            doc.put(&m, k::NOTE, e.note.as_str())?;
            doc.put(&m, k::RECORDED_BY, e.recorded_by.as_str())?;
            doc.put(&m, k::DEVICE_ID, e.device_id.as_str())?;
            doc.put(&m, k::RECORDED_AT, e.recorded_at)?;
            Ok(())
        })?;
        Ok(event)
    }

    /// Records an attached file (a photo, a scanned document, a signature)
    /// as one change: its reference only, never its bytes. Refused, leaving
    /// the document as it was, if it breaks a rule (unknown receipt, a
    /// signature without a signer…) or the document predates attachments.
    pub fn record_attachment(
        &mut self,
        new: NewAttachment,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<Attachment, ModelError> {
        let current = self.read()?;
        let attachment = Attachment {
            id: new.id,
            event: AttachmentEvent::File {
                file_kind: new.file_kind,
                receipt_id: new.receipt_id,
                file: new.file,
                signer: new.signer,
                delivery_id: new.delivery_id.filter(|_| current.schema >= 4),
            },
            note: new.note,
            recorded_by: who.user.clone(),
            device_id: who.device.clone(),
            recorded_at: now_ms,
        };
        self.put_attachment(&current, attachment)
    }

    /// Records the removal of an attached file, with why (`note`).
    pub fn remove_attachment(
        &mut self,
        id: AttachmentId,
        removes: AttachmentId,
        note: &str,
        who: &Recorder,
        now_ms: i64,
    ) -> Result<Attachment, ModelError> {
        let current = self.read()?;
        let attachment = Attachment {
            id,
            event: AttachmentEvent::Removal { removes },
            note: note.to_owned(),
            recorded_by: who.user.clone(),
            device_id: who.device.clone(),
            recorded_at: now_ms,
        };
        self.put_attachment(&current, attachment)
    }

    fn put_attachment(
        &mut self,
        current: &Shipment,
        attachment: Attachment,
    ) -> Result<Attachment, ModelError> {
        if current.schema < 2 {
            return Err(ModelError::NoAttachments {
                schema: current.schema,
            });
        }
        if current.attachments.contains_key(&attachment.id) {
            return Err(ModelError::AlreadyExists {
                kind: "attachment",
                id: attachment.id.to_string(),
            });
        }
        let mut all = current.attachments.clone();
        all.insert(attachment.id.clone(), attachment.clone());
        attachment.check(&current.receipts, &current.deliveries, &all)?;
        let a = &attachment;
        self.change(a.recorded_at, |doc| {
            let attachments = container(doc, k::ATTACHMENTS)?;
            let m = doc.put_object(&attachments, a.id.as_str(), ObjType::Map)?;
            match &a.event {
                AttachmentEvent::File {
                    file_kind,
                    receipt_id,
                    file,
                    signer,
                    delivery_id,
                } => {
                    doc.put(&m, k::KIND, file_kind.as_str())?;
                    if let Some(d) = delivery_id {
                        doc.put(&m, k::DELIVERY_ID, d.as_str())?;
                    }
                    if let Some(r) = receipt_id {
                        doc.put(&m, k::RECEIPT_ID, r.as_str())?;
                    }
                    doc.put(&m, k::SHA256, file.sha256.as_str())?;
                    doc.put(&m, k::MEDIA_TYPE, file.media_type.as_str())?;
                    doc.put(&m, k::SIZE, file.size)?;
                    if let (Some(w), Some(h)) = (file.width, file.height) {
                        doc.put(&m, k::WIDTH, w)?;
                        doc.put(&m, k::HEIGHT, h)?;
                    }
                    if let Some(signer) = signer {
                        doc.put(&m, k::SIGNER_NAME, signer.name.as_str())?;
                        doc.put(&m, k::SIGNER_ROLE, signer.role.as_str())?;
                    }
                }
                AttachmentEvent::Removal { removes } => {
                    doc.put(&m, k::KIND, REMOVAL_KIND)?;
                    doc.put(&m, k::REMOVES, removes.as_str())?;
                }
            }
            doc.put(&m, k::NOTE, a.note.as_str())?;
            doc.put(&m, k::RECORDED_BY, a.recorded_by.as_str())?;
            doc.put(&m, k::DEVICE_ID, a.device_id.as_str())?;
            doc.put(&m, k::RECORDED_AT, a.recorded_at)?;
            Ok(())
        })?;
        Ok(attachment)
    }

    /// Adds a coordinator's review note as one change.
    pub fn add_review(
        &mut self,
        new: NewReview,
        by: &UserId,
        now_ms: i64,
    ) -> Result<Review, ModelError> {
        let current = self.read()?;
        if current.reviews.contains_key(&new.id) {
            return Err(ModelError::AlreadyExists {
                kind: "review",
                id: new.id.to_string(),
            });
        }
        let review = Review {
            id: new.id,
            by: by.clone(),
            at: now_ms,
            note: new.note,
            verdict: new.verdict,
            resolves: new.resolves,
        };
        review.check(&current.receipts)?;
        self.change(now_ms, |doc| {
            let reviews = container(doc, k::REVIEWS)?;
            let r = doc.put_object(&reviews, review.id.as_str(), ObjType::Map)?;
            doc.put(&r, k::BY, review.by.as_str())?;
            doc.put(&r, k::AT, review.at)?;
            doc.put(&r, k::NOTE, review.note.as_str())?;
            if let Some(v) = review.verdict {
                doc.put(&r, k::VERDICT, v.as_str())?;
            }
            let resolves: Vec<String> = review.resolves.iter().map(ToString::to_string).collect();
            put_strings(doc, &r, k::RESOLVES, &resolves)?;
            Ok(())
        })?;
        Ok(review)
    }

    /// Adds an expected line to the manifest.
    pub fn add_line(&mut self, line: &Line, now_ms: i64) -> Result<(), ModelError> {
        let current = self.read()?;
        if current.lines.contains_key(&line.id) {
            return Err(ModelError::AlreadyExists {
                kind: "line",
                id: line.id.to_string(),
            });
        }
        line.check()?;
        if current.schema < 4 && (!line.accessories.is_empty() || line.unit_value.is_some()) {
            return Err(ModelError::NoUnitRecords {
                schema: current.schema,
            });
        }
        check_manifest_size(current.lines.values().chain([line]))?;
        self.change(now_ms, |doc| {
            let lines = container(doc, k::LINES)?;
            write_line(doc, &lines, line, current.schema)
        })
    }

    /// Replaces the shipment's note. Concurrent edits merge last-writer-wins;
    /// the other values stay visible in [`Shipment::conflicts`].
    pub fn set_note(&mut self, note: &str, now_ms: i64) -> Result<(), ModelError> {
        check_text("shipment/note", note, MAX_NOTE_CHARS)?;
        self.set_header_field(k::NOTE, note.into(), now_ms)
    }

    /// Replaces the expected arrival date (`YYYY-MM-DD`), or clears it.
    pub fn set_expected_on(&mut self, date: Option<&str>, now_ms: i64) -> Result<(), ModelError> {
        let value = match date {
            Some(d) => {
                check_date("shipment/expected_on", d)?;
                ScalarValue::from(d)
            }
            None => ScalarValue::Null,
        };
        self.set_header_field(k::EXPECTED_ON, value, now_ms)
    }

    fn set_header_field(
        &mut self,
        key: &str,
        value: ScalarValue,
        now_ms: i64,
    ) -> Result<(), ModelError> {
        self.read()?;
        self.change(now_ms, |doc| {
            let h = container(doc, k::SHIPMENT)?;
            doc.put(&h, key, value)
        })
    }

    /// Applies `edit` as exactly one change, or not at all.
    fn change(
        &mut self,
        now_ms: i64,
        edit: impl FnOnce(&mut AutoCommit) -> Result<(), automerge::AutomergeError>,
    ) -> Result<(), ModelError> {
        match edit(&mut self.doc) {
            Ok(()) => {
                self.doc
                    .commit_with(CommitOptions::default().with_time(now_ms));
                Ok(())
            }
            Err(e) => {
                self.doc.rollback();
                Err(am(e))
            }
        }
    }
}

/// The id of a root container. Callers have just read the document, so it
/// exists and is unique.
fn container(doc: &AutoCommit, key: &str) -> Result<ObjId, automerge::AutomergeError> {
    match doc.get(ROOT, key)? {
        Some((automerge::Value::Object(_), id)) => Ok(id),
        _ => Err(automerge::AutomergeError::InvalidObjId(key.to_owned())),
    }
}

fn put_strings(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
    items: &[String],
) -> Result<(), automerge::AutomergeError> {
    let list = doc.put_object(obj, key, ObjType::List)?;
    for (i, s) in items.iter().enumerate() {
        doc.insert(&list, i, s.as_str())?;
    }
    Ok(())
}

/// Writes `line` into a document of `schema`: the fields schema 4 added
/// only where that schema allows them (callers refuse a line that needs
/// them in an older document).
fn write_line(
    doc: &mut AutoCommit,
    lines: &ObjId,
    line: &Line,
    schema: u64,
) -> Result<(), automerge::AutomergeError> {
    let l = doc.put_object(lines, line.id.as_str(), ObjType::Map)?;
    doc.put(&l, k::ITEM, line.item.as_str())?;
    doc.put(&l, k::CATEGORY, line.category.as_str())?;
    doc.put(&l, k::UNIT, line.unit.as_str())?;
    doc.put(&l, k::QUANTITY_EXPECTED, line.quantity_expected)?;
    put_strings(doc, &l, k::SERIALS_EXPECTED, &line.serials_expected)?;
    if schema >= 4 {
        // Written only when there are some: most lines have none, and an
        // absent list reads as empty.
        if !line.accessories.is_empty() {
            put_strings(doc, &l, k::ACCESSORIES, &line.accessories)?;
        }
        if let Some(v) = &line.unit_value {
            doc.put(&l, k::UNIT_VALUE, v.as_str())?;
        }
    }
    Ok(())
}
