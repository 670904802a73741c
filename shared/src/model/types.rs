//! Typed values of a shipment document, the rules each value must satisfy and
//! the precise error for each broken rule.
//!
//! The same checks run when a phone records a receipt (before anything is
//! saved) and when the server reads a merged document (before anything is
//! committed), so the two sides cannot disagree about what is valid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::units::{UnitEvent, check_unit_value};
use crate::ids::{
    AttachmentId, DeliveryId, DeviceId, FacilityId, IdError, LineId, ReceiptId, ReviewId,
    ShipmentId, UnitEventId, UserId,
};

/// Version of the document layout this code writes. Schema 2 added
/// `attachments`; schema 3 added `deliveries` and a receipt's stage,
/// reason and delivery; schema 4 added `unit_events` and a line's
/// accessories and unit value. Older documents still read (with none of these)
/// until the server upgrades them ([`ShipmentDoc::upgrade`](super::ShipmentDoc::upgrade)).
pub const SCHEMA_VERSION: u64 = 4;
/// Oldest document layout this code reads.
pub const OLDEST_SCHEMA_VERSION: u64 = 1;
/// Largest quantity on one line or receipt: far above any real delivery, low
/// enough that totals over a whole programme cannot overflow.
pub const MAX_QUANTITY: u64 = 1_000_000;
/// Longest free-text note, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;
/// Longest short text (donor, item, unit…), in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Longest serial number, in characters.
pub const MAX_SERIAL_CHARS: usize = 64;
/// Most serial numbers on one line or receipt.
pub const MAX_SERIALS: usize = 1_000;
/// Most lines a shipment is created with or given. Automerge's cost of
/// writing a shipment grows faster than its size: one created with 1,000
/// lines of 1,000 serials each (a 6 MB manifest) took the server 16 s and
/// 270 MB.
pub const MAX_LINES: usize = 1_000;
/// Most serial numbers expected over all of a shipment's lines.
pub const MAX_SHIPMENT_SERIALS: usize = 10_000;
/// Largest file an attachment may reference. The server's per-file limit
/// (a flag) is usually lower; this bounds what a document may claim.
pub const MAX_ATTACHMENT_BYTES: u64 = 100 * 1024 * 1024;
/// Largest width or height an image attachment may claim, in pixels.
pub const MAX_ATTACHMENT_PIXELS: u64 = 100_000;
/// File types an attachment may have: photos and scans as JPEG, PNG or
/// WebP, documents also as PDF. Anything else (HTML, SVG with scripts, an
/// executable) has no business in a receiving record.
pub const ATTACHMENT_MEDIA_TYPES: [&str; 4] =
    ["image/jpeg", "image/png", "image/webp", "application/pdf"];
/// Longest unknown key an error repeats, in characters: enough to recognise
/// it, short enough that a refusal never echoes an attacker's payload.
pub const MAX_REPORTED_KEY_CHARS: usize = 64;

/// A closed vocabulary stored as text in documents: the enum, every value
/// in order (`ALL`), and its text both ways (`as_str`, `parse`). The text is
/// what documents hold and what serde writes, so the two never disagree.
macro_rules! vocabulary {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// Every value's text, for an error that lists what is accepted.
            pub fn expected() -> String {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                all.join(", ")
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// State of the units a receipt counts, in the vocabulary freight already
    /// uses for receipt exceptions.
    pub enum Condition {
        /// Received in good order.
        Good = "good",
        Damaged = "damaged",
        /// Arrived, but incomplete (accessories, parts or documentation missing).
        MissingParts = "missing_parts",
        /// Something arrived, but not the item the line expects.
        WrongItem = "wrong_item",
    }
}

vocabulary! {
    /// How far a receipt has come: counted at the truck, or judged after
    /// inspection. A later stage is recorded as a new receipt that voids the
    /// earlier one, like any correction, so the count at the truck stays on
    /// record.
    pub enum Stage {
        /// Counted at the truck, not yet inspected.
        Provisional = "provisional",
        /// Inspected and taken into the hospital's keeping.
        Accepted = "accepted",
        /// Inspected and refused: it goes back, with a reason.
        Rejected = "rejected",
    }
}

vocabulary! {
    /// Why a receipt differs from the manifest, in the vocabulary of a
    /// goods-received note's exceptions.
    pub enum Reason {
        /// Fewer units than outstanding.
        Short = "short",
        /// More units than outstanding.
        Over = "over",
        DamagedInTransit = "damaged_in_transit",
        MissingParts = "missing_parts",
        /// Not the item the line expects, or a substitute.
        WrongItem = "wrong_item",
        Expired = "expired",
        /// Anything else; the note says what.
        Other = "other",
    }
}

vocabulary! {
    /// The state of a delivery's seal when the truck was opened.
    pub enum Seal {
        Intact = "intact",
        Broken = "broken",
        /// The load carried no seal.
        None = "none",
    }
}

vocabulary! {
    /// A coordinator's judgement in a review, as field teams know it from ODK.
    pub enum Verdict {
        Approved = "approved",
        HasIssues = "has_issues",
        Rejected = "rejected",
    }
}

impl Verdict {
    /// Whether this verdict settles the discrepancies it covers. "Approved"
    /// (accepted as it is) and "rejected" (the record is not accepted; the
    /// coordinator has decided) close them; "has issues" says the problem
    /// was seen and still needs following up, so it stays open.
    pub fn settles(self) -> bool {
        match self {
            Verdict::Approved | Verdict::Rejected => true,
            Verdict::HasIssues => false,
        }
    }
}

/// The shipment's header: what was sent, by whom, to where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub id: ShipmentId,
    pub donor: String,
    pub programme: String,
    /// Waybill or donor manifest number.
    pub reference: String,
    pub destination_facility: FacilityId,
    /// Expected arrival, `YYYY-MM-DD`, if known.
    pub expected_on: Option<String>,
    pub created_by: UserId,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub note: String,
}

/// One expected line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: LineId,
    pub item: String,
    /// e.g. "imaging", "endoscopy", "vehicle": used to group totals.
    pub category: String,
    pub unit: String,
    pub quantity_expected: u64,
    pub serials_expected: Vec<String>,
    /// Accessories, manuals and certificates each unit should come with,
    /// ticked per unit on the phone. Empty before schema 4.
    #[serde(default)]
    pub accessories: Vec<String>,
    /// Estimated value of one unit, `AMOUNT CUR` ([`UnitValue`]), if the
    /// donor gave one.
    #[serde(default)]
    pub unit_value: Option<String>,
}

/// One receipt event: what someone counted, on which line, in what state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: ReceiptId,
    pub line_id: LineId,
    /// Units counted. Zero only for a receipt that just voids another.
    pub quantity: u64,
    pub condition: Condition,
    pub serials: Vec<String>,
    pub note: String,
    pub recorded_by: UserId,
    pub device_id: DeviceId,
    /// When the phone recorded it, milliseconds since the Unix epoch.
    pub recorded_at: i64,
    /// An earlier receipt this one replaces (a correction) or cancels.
    pub voids: Option<ReceiptId>,
    /// `None` on receipts recorded before stages existed (schema 2 and
    /// earlier), which are read as counted, not inspected.
    #[serde(default)]
    pub stage: Option<Stage>,
    #[serde(default)]
    pub reason: Option<Reason>,
    /// The delivery (truck) that brought these units, if recorded.
    #[serde(default)]
    pub delivery_id: Option<DeliveryId>,
}

impl Receipt {
    /// The stage, reading a receipt from before stages as provisional.
    pub fn stage(&self) -> Stage {
        self.stage.unwrap_or(Stage::Provisional)
    }
}

/// One delivery: a truck's arrival, with the papers it came with and the
/// state of its load. An immutable event like a receipt; a correction is a
/// new delivery that `replaces` the earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    /// Waybill or consignment note number.
    pub waybill: String,
    pub transporter: String,
    /// Vehicle registration.
    pub vehicle: String,
    pub seal: Seal,
    pub seal_number: String,
    pub packages_expected: Option<u64>,
    pub packages_received: Option<u64>,
    /// When the truck arrived, milliseconds since the Unix epoch.
    pub arrived_at: i64,
    /// Remarks.
    pub note: String,
    pub recorded_by: UserId,
    pub device_id: DeviceId,
    pub recorded_at: i64,
    pub replaces: Option<DeliveryId>,
}

/// What a receiver supplies to record a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    pub id: DeliveryId,
    #[serde(default)]
    pub waybill: String,
    #[serde(default)]
    pub transporter: String,
    #[serde(default)]
    pub vehicle: String,
    pub seal: Seal,
    #[serde(default)]
    pub seal_number: String,
    #[serde(default)]
    pub packages_expected: Option<u64>,
    #[serde(default)]
    pub packages_received: Option<u64>,
    pub arrived_at: i64,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub replaces: Option<DeliveryId>,
}

/// A coordinator's review note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: ReviewId,
    pub by: UserId,
    pub at: i64,
    pub note: String,
    pub verdict: Option<Verdict>,
    /// Receipts this review settles (empty: the shipment as a whole).
    pub resolves: Vec<ReceiptId>,
}

vocabulary! {
    /// What an attached file is.
    pub enum FileKind {
        /// A photo of the goods, a crate, a label, a serial plate.
        Photo = "photo",
        /// A scanned or photographed paper: waybill, packing list, delivery note.
        Document = "document",
        /// A signature drawn on the phone's screen by a named person.
        Signature = "signature",
    }
}

/// The `kind` of an attachment event that removes an earlier one.
pub const REMOVAL_KIND: &str = "removal";

/// The bytes an attachment refers to. They never enter the document: they
/// upload separately, addressed by their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRef {
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// Pixel size of an image, when known.
    #[serde(default)]
    pub width: Option<u64>,
    #[serde(default)]
    pub height: Option<u64>,
}

/// The person who signed, for a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    pub name: String,
    /// e.g. "receiving officer", "driver".
    pub role: String,
}

/// What an attachment event does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttachmentEvent {
    /// Attaches a file to a receipt, or to the shipment as a whole.
    File {
        file_kind: FileKind,
        receipt_id: Option<ReceiptId>,
        file: FileRef,
        signer: Option<Signer>,
        /// The delivery (truck) it belongs to, e.g. the signatures at its
        /// goods-received note (schema 4; none before: the shipment's).
        #[serde(default)]
        delivery_id: Option<DeliveryId>,
    },
    /// Removes an earlier file: nothing vanishes silently, the removal is
    /// recorded with who, when and why (the note).
    Removal { removes: AttachmentId },
}

/// One attachment event, immutable like a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    #[serde(flatten)]
    pub event: AttachmentEvent,
    /// A photo's caption, or why a file was removed.
    pub note: String,
    pub recorded_by: UserId,
    pub device_id: DeviceId,
    pub recorded_at: i64,
}

impl Attachment {
    /// The file this event attaches, if it attaches one.
    pub fn file(&self) -> Option<&FileRef> {
        match &self.event {
            AttachmentEvent::File { file, .. } => Some(file),
            AttachmentEvent::Removal { .. } => None,
        }
    }
}

/// What a receiver supplies to attach a file; who and when come from the
/// [`Recorder`] and the clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttachment {
    pub id: AttachmentId,
    pub file_kind: FileKind,
    #[serde(default)]
    pub receipt_id: Option<ReceiptId>,
    pub file: FileRef,
    #[serde(default)]
    pub signer: Option<Signer>,
    #[serde(default)]
    pub note: String,
    /// The delivery it belongs to (a signature at the truck); dropped on a
    /// document from before schema 4, where the file belongs to the
    /// shipment as a whole.
    #[serde(default)]
    pub delivery_id: Option<DeliveryId>,
}

/// A field that two people edited concurrently. `values` holds every value,
/// the winner (the one the document shows) first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Slash-separated path, e.g. `shipment/note` or `lines/l1/quantity_expected`.
    pub path: String,
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: String,
    /// Hex automerge actor id of the device that wrote this value.
    pub actor: String,
}

/// A whole shipment, read and validated from its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The document's layout version ([`SCHEMA_VERSION`]).
    pub schema: u64,
    pub header: Header,
    pub lines: BTreeMap<LineId, Line>,
    pub receipts: BTreeMap<ReceiptId, Receipt>,
    pub reviews: BTreeMap<ReviewId, Review>,
    /// Empty in a schema 1 document.
    pub attachments: BTreeMap<AttachmentId, Attachment>,
    /// Empty before schema 3.
    #[serde(default)]
    pub deliveries: BTreeMap<DeliveryId, Delivery>,
    /// Empty before schema 4.
    #[serde(default)]
    pub unit_events: BTreeMap<UnitEventId, UnitEvent>,
    pub conflicts: Vec<Conflict>,
}

/// What a coordinator supplies to create a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShipment {
    pub id: ShipmentId,
    pub donor: String,
    pub programme: String,
    pub reference: String,
    pub destination_facility: FacilityId,
    pub expected_on: Option<String>,
    #[serde(default)]
    pub note: String,
    pub lines: Vec<Line>,
}

/// What a receiver supplies to record a receipt; who, where and when come
/// from the [`Recorder`] and the clock the caller passes in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReceipt {
    pub id: ReceiptId,
    pub line_id: LineId,
    pub quantity: u64,
    pub condition: Condition,
    #[serde(default)]
    pub serials: Vec<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub voids: Option<ReceiptId>,
    /// Provisional when not given.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// Required when the condition is not good, the stage is rejected, or
    /// the quantity differs from what is outstanding on the line.
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub delivery_id: Option<DeliveryId>,
}

impl From<&Receipt> for NewReceipt {
    fn from(r: &Receipt) -> Self {
        NewReceipt {
            id: r.id.clone(),
            line_id: r.line_id.clone(),
            quantity: r.quantity,
            condition: r.condition,
            serials: r.serials.clone(),
            note: r.note.clone(),
            voids: r.voids.clone(),
            stage: r.stage,
            reason: r.reason,
            delivery_id: r.delivery_id.clone(),
        }
    }
}

impl From<&Delivery> for NewDelivery {
    fn from(d: &Delivery) -> Self {
        NewDelivery {
            id: d.id.clone(),
            waybill: d.waybill.clone(),
            transporter: d.transporter.clone(),
            vehicle: d.vehicle.clone(),
            seal: d.seal,
            seal_number: d.seal_number.clone(),
            packages_expected: d.packages_expected,
            packages_received: d.packages_received,
            arrived_at: d.arrived_at,
            note: d.note.clone(),
            replaces: d.replaces.clone(),
        }
    }
}

/// Who is making a change: the person and the device they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorder {
    pub user: UserId,
    pub device: DeviceId,
}

/// Why a document, or a change to it, is not a valid shipment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("the bytes are not an automerge document or change: {0}")]
    Corrupt(String),
    #[error(
        "document schema {found} is not supported (this build reads {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})"
    )]
    UnsupportedSchema { found: String },
    #[error("{path}: missing")]
    Missing { path: String },
    #[error("{path}: expected {expected}")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: {source}")]
    BadId { path: String, source: IdError },
    /// A key the model does not define, in the map at `path` (`document`
    /// for the root). `key` is cut to [`MAX_REPORTED_KEY_CHARS`] so that a
    /// huge key cannot make a huge error; `{key:?}` quotes and escapes it.
    #[error("{path}: unknown field {key:?}")]
    UnknownField { path: String, key: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: quantity must be between 1 and {MAX_QUANTITY}")]
    QuantityOutOfRange { path: String },
    #[error("receipt {receipt}: no line {line} in this shipment")]
    UnknownLine { receipt: ReceiptId, line: LineId },
    #[error("receipt {receipt}: voids receipt {voids}, which does not exist")]
    VoidsUnknownReceipt {
        receipt: ReceiptId,
        voids: ReceiptId,
    },
    #[error("receipt {receipt}: a receipt cannot void itself")]
    VoidsItself { receipt: ReceiptId },
    #[error("review {review}: resolves receipt {receipt}, which does not exist")]
    ResolvesUnknownReceipt {
        review: ReviewId,
        receipt: ReceiptId,
    },
    #[error("receipt {receipt}: {why}; choose a reason")]
    ReasonRequired {
        receipt: ReceiptId,
        why: &'static str,
    },
    #[error("receipt {receipt}: delivery {delivery} does not exist")]
    UnknownDelivery {
        receipt: ReceiptId,
        delivery: DeliveryId,
    },
    #[error("delivery {delivery}: replaces delivery {replaces}, which does not exist")]
    ReplacesUnknownDelivery {
        delivery: DeliveryId,
        replaces: DeliveryId,
    },
    #[error(
        "this shipment's document predates deliveries (schema {schema}); sync once so the server can upgrade it"
    )]
    NoDeliveries { schema: u64 },
    #[error(
        "this shipment's document predates unit records (schema {schema}); sync once so the server can upgrade it"
    )]
    NoUnitRecords { schema: u64 },
    #[error("attachment {attachment}: is on receipt {receipt}, which does not exist")]
    AttachedToUnknownReceipt {
        attachment: AttachmentId,
        receipt: ReceiptId,
    },
    #[error(
        "attachment {attachment}: removes attachment {removes}, which is not a file in this shipment"
    )]
    RemovesUnknownAttachment {
        attachment: AttachmentId,
        removes: AttachmentId,
    },
    #[error(
        "this shipment's document predates attachments (schema {schema}); sync once so the server can upgrade it"
    )]
    NoAttachments { schema: u64 },
    #[error("{path}: schema cannot go back from {from} to {to}")]
    SchemaDowngrade { path: String, from: u64, to: u64 },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{path}: recorded events are immutable; record a correction that voids it instead")]
    Immutable { path: String },
    #[error("{path}: cannot be removed")]
    Removed { path: String },
    #[error("shipment id cannot change from {from} to {to}")]
    IdChanged { from: ShipmentId, to: ShipmentId },
}

impl ModelError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unknown_field(path: impl Into<String>, key: &str) -> Self {
        let mut shown: String = key.chars().take(MAX_REPORTED_KEY_CHARS).collect();
        if shown.len() < key.len() {
            shown.push('…');
        }
        ModelError::UnknownField {
            path: path.into(),
            key: shown,
        }
    }
}

pub(crate) fn check_label(path: &str, s: &str, required: bool) -> Result<(), ModelError> {
    if required && s.trim().is_empty() {
        return Err(ModelError::invalid(path, "must not be empty"));
    }
    check_text(path, s, MAX_LABEL_CHARS)
}

pub(crate) fn check_text(path: &str, s: &str, max_chars: usize) -> Result<(), ModelError> {
    if s.chars().count() > max_chars {
        return Err(ModelError::invalid(
            path,
            format!("longer than {max_chars} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ModelError::invalid(path, "contains control characters"));
    }
    Ok(())
}

/// A manifest no larger than a shipment is created with or grows to:
/// [`MAX_LINES`] lines and [`MAX_SHIPMENT_SERIALS`] expected serials. Checked
/// where a shipment is written, not where one is read, so no stored document
/// becomes unreadable by it.
pub(crate) fn check_manifest_size<'a>(
    lines: impl Iterator<Item = &'a Line>,
) -> Result<(), ModelError> {
    let (mut count, mut serials) = (0usize, 0usize);
    for line in lines {
        count += 1;
        serials += line.serials_expected.len();
    }
    if count > MAX_LINES {
        return Err(ModelError::invalid(
            "lines",
            format!("more than {MAX_LINES} lines in one shipment; split it"),
        ));
    }
    if serials > MAX_SHIPMENT_SERIALS {
        return Err(ModelError::invalid(
            "lines",
            format!(
                "more than {MAX_SHIPMENT_SERIALS} expected serial numbers in one shipment; split it"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_serials(path: &str, serials: &[String]) -> Result<(), ModelError> {
    if serials.len() > MAX_SERIALS {
        return Err(ModelError::invalid(
            path,
            format!("more than {MAX_SERIALS} serial numbers"),
        ));
    }
    for (i, s) in serials.iter().enumerate() {
        let p = format!("{path}/{i}");
        if s.trim().is_empty() {
            return Err(ModelError::invalid(p, "serial number is empty"));
        }
        if s.chars().count() > MAX_SERIAL_CHARS {
            return Err(ModelError::invalid(
                p,
                format!("serial number longer than {MAX_SERIAL_CHARS} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ModelError::invalid(p, "contains control characters"));
        }
    }
    Ok(())
}

pub(crate) fn check_accessories(path: &str, items: &[String]) -> Result<(), ModelError> {
    if items.len() > super::units::MAX_ACCESSORIES {
        return Err(ModelError::invalid(
            path,
            format!("more than {} items", super::units::MAX_ACCESSORIES),
        ));
    }
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, item)| check_label(&format!("{path}/{i}"), item, true))
}

pub(crate) fn check_quantity(path: &str, q: u64) -> Result<(), ModelError> {
    if q == 0 || q > MAX_QUANTITY {
        return Err(ModelError::QuantityOutOfRange { path: path.into() });
    }
    Ok(())
}

pub(crate) fn check_date(path: &str, s: &str) -> Result<(), ModelError> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && (1..=12).contains(&s[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u8>().unwrap_or(0));
    if ok {
        Ok(())
    } else {
        Err(ModelError::invalid(path, "expected a date as YYYY-MM-DD"))
    }
}

pub(crate) fn check_time(path: &str, t: i64) -> Result<(), ModelError> {
    if t < 0 {
        return Err(ModelError::invalid(path, "time before 1970"));
    }
    Ok(())
}

/// The checks of a shipment's own fields, each run (a `Vec`, not `?`), so
/// one caller can stop at the first problem and another list them all.
fn header_field_checks(
    donor: &str,
    programme: &str,
    reference: &str,
    expected_on: Option<&str>,
    note: &str,
) -> Vec<Result<(), ModelError>> {
    vec![
        check_label("shipment/donor", donor, true),
        check_label("shipment/programme", programme, false),
        check_label("shipment/reference", reference, false),
        expected_on.map_or(Ok(()), |d| check_date("shipment/expected_on", d)),
        check_text("shipment/note", note, MAX_NOTE_CHARS),
    ]
}

impl Header {
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        let mut checks = header_field_checks(
            &self.donor,
            &self.programme,
            &self.reference,
            self.expected_on.as_deref(),
            &self.note,
        );
        checks.push(check_time("shipment/created_at", self.created_at));
        checks.into_iter().collect()
    }
}

impl Line {
    /// Every field's check, each run.
    fn checks(&self) -> Vec<Result<(), ModelError>> {
        let p = format!("lines/{}", self.id);
        vec![
            check_label(&format!("{p}/item"), &self.item, true),
            check_label(&format!("{p}/category"), &self.category, true),
            check_label(&format!("{p}/unit"), &self.unit, true),
            check_quantity(&format!("{p}/quantity_expected"), self.quantity_expected),
            check_serials(&format!("{p}/serials_expected"), &self.serials_expected),
            check_accessories(&format!("{p}/accessories"), &self.accessories),
            check_unit_value(&format!("{p}/unit_value"), self.unit_value.as_deref()),
        ]
    }

    pub(crate) fn check(&self) -> Result<(), ModelError> {
        self.checks().into_iter().collect()
    }
}

impl NewShipment {
    /// Every problem with the fields of a shipment about to be created and
    /// of its lines, not only the first: a coordinator fixing a manifest
    /// sees them all at once. (Creating it still checks the whole.)
    pub fn problems(&self) -> Vec<ModelError> {
        header_field_checks(
            &self.donor,
            &self.programme,
            &self.reference,
            self.expected_on.as_deref(),
            &self.note,
        )
        .into_iter()
        .chain(self.lines.iter().flat_map(Line::checks))
        .filter_map(Result::err)
        .collect()
    }
}

impl Receipt {
    /// Checks this receipt on its own and against the shipment it belongs to.
    pub(crate) fn check(
        &self,
        lines: &BTreeMap<LineId, Line>,
        receipts: &BTreeMap<ReceiptId, Receipt>,
        deliveries: &BTreeMap<DeliveryId, Delivery>,
    ) -> Result<(), ModelError> {
        let p = format!("receipts/{}", self.id);
        if !lines.contains_key(&self.line_id) {
            return Err(ModelError::UnknownLine {
                receipt: self.id.clone(),
                line: self.line_id.clone(),
            });
        }
        if let Some(d) = &self.delivery_id
            && !deliveries.contains_key(d)
        {
            return Err(ModelError::UnknownDelivery {
                receipt: self.id.clone(),
                delivery: d.clone(),
            });
        }
        self.check_reason()?;
        // A pure void carries no units; anything else must count some.
        if !(self.quantity == 0 && self.voids.is_some()) {
            check_quantity(&format!("{p}/quantity"), self.quantity)?;
        }
        check_serials(&format!("{p}/serials"), &self.serials)?;
        check_text(&format!("{p}/note"), &self.note, MAX_NOTE_CHARS)?;
        check_time(&format!("{p}/recorded_at"), self.recorded_at)?;
        if let Some(v) = &self.voids {
            if v == &self.id {
                return Err(ModelError::VoidsItself {
                    receipt: self.id.clone(),
                });
            }
            if !receipts.contains_key(v) {
                return Err(ModelError::VoidsUnknownReceipt {
                    receipt: self.id.clone(),
                    voids: v.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Receipt {
    /// The rules on reasons that depend on the receipt alone, so that every
    /// replica, whatever else it has merged, judges a receipt the same way.
    /// (Whether the quantity matches what was outstanding depends on what
    /// the recorder had seen: [`Shipment::reason_needed`] checks that when
    /// the receipt is recorded.) Receipts from before stages (no `stage`)
    /// carry no reasons and are not held to them.
    fn check_reason(&self) -> Result<(), ModelError> {
        let Some(stage) = self.stage else {
            return Ok(());
        };
        if self.reason.is_none() {
            let why = if stage == Stage::Rejected {
                Some("a rejected receipt needs a reason")
            } else if self.condition != Condition::Good && self.quantity > 0 {
                Some("units not in good order need a reason")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ModelError::ReasonRequired {
                    receipt: self.id.clone(),
                    why,
                });
            }
        }
        if self.reason == Some(Reason::Other) && self.note.trim().is_empty() {
            return Err(ModelError::invalid(
                format!("receipts/{}/note", self.id),
                "the reason is \"other\": say what in the note",
            ));
        }
        Ok(())
    }
}

impl Delivery {
    pub(crate) fn check(
        &self,
        deliveries: &BTreeMap<DeliveryId, Delivery>,
    ) -> Result<(), ModelError> {
        let p = format!("deliveries/{}", self.id);
        check_label(&format!("{p}/waybill"), &self.waybill, false)?;
        check_label(&format!("{p}/transporter"), &self.transporter, false)?;
        check_label(&format!("{p}/vehicle"), &self.vehicle, false)?;
        check_label(&format!("{p}/seal_number"), &self.seal_number, false)?;
        for (key, v) in [
            ("packages_expected", self.packages_expected),
            ("packages_received", self.packages_received),
        ] {
            if v.is_some_and(|v| v > MAX_QUANTITY) {
                return Err(ModelError::QuantityOutOfRange {
                    path: format!("{p}/{key}"),
                });
            }
        }
        check_time(&format!("{p}/arrived_at"), self.arrived_at)?;
        check_text(&format!("{p}/note"), &self.note, MAX_NOTE_CHARS)?;
        check_time(&format!("{p}/recorded_at"), self.recorded_at)?;
        if let Some(r) = &self.replaces
            && (r == &self.id || !deliveries.contains_key(r))
        {
            return Err(ModelError::ReplacesUnknownDelivery {
                delivery: self.id.clone(),
                replaces: r.clone(),
            });
        }
        Ok(())
    }
}

impl Review {
    pub(crate) fn check(&self, receipts: &BTreeMap<ReceiptId, Receipt>) -> Result<(), ModelError> {
        let p = format!("reviews/{}", self.id);
        check_text(&format!("{p}/note"), &self.note, MAX_NOTE_CHARS)?;
        check_time(&format!("{p}/at"), self.at)?;
        if let Some(r) = self.resolves.iter().find(|r| !receipts.contains_key(*r)) {
            return Err(ModelError::ResolvesUnknownReceipt {
                review: self.id.clone(),
                receipt: r.clone(),
            });
        }
        Ok(())
    }
}

/// Whether `s` is a SHA-256 digest as attachments name it.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FileRef {
    pub(crate) fn check(&self, path: &str) -> Result<(), ModelError> {
        if !is_sha256_hex(&self.sha256) {
            return Err(ModelError::invalid(
                format!("{path}/sha256"),
                "expected a SHA-256 digest as 64 lowercase hex digits",
            ));
        }
        if !ATTACHMENT_MEDIA_TYPES.contains(&self.media_type.as_str()) {
            return Err(ModelError::invalid(
                format!("{path}/media_type"),
                format!(
                    "{:?} is not an accepted file type (expected one of {})",
                    self.media_type
                        .chars()
                        .take(MAX_REPORTED_KEY_CHARS)
                        .collect::<String>(),
                    ATTACHMENT_MEDIA_TYPES.join(", ")
                ),
            ));
        }
        if self.size == 0 || self.size > MAX_ATTACHMENT_BYTES {
            return Err(ModelError::invalid(
                format!("{path}/size"),
                format!("must be between 1 and {MAX_ATTACHMENT_BYTES} bytes"),
            ));
        }
        for (key, v) in [("width", self.width), ("height", self.height)] {
            if v.is_some_and(|v| v == 0 || v > MAX_ATTACHMENT_PIXELS) {
                return Err(ModelError::invalid(
                    format!("{path}/{key}"),
                    format!("must be between 1 and {MAX_ATTACHMENT_PIXELS} pixels"),
                ));
            }
        }
        if self.width.is_some() != self.height.is_some() {
            return Err(ModelError::invalid(
                format!("{path}/width"),
                "width and height go together",
            ));
        }
        Ok(())
    }
}

impl Attachment {
    /// Checks this event on its own and against the shipment's receipts and
    /// attachments.
    pub(crate) fn check(
        &self,
        receipts: &BTreeMap<ReceiptId, Receipt>,
        deliveries: &BTreeMap<DeliveryId, Delivery>,
        attachments: &BTreeMap<AttachmentId, Attachment>,
    ) -> Result<(), ModelError> {
        let p = format!("attachments/{}", self.id);
        check_text(&format!("{p}/note"), &self.note, MAX_NOTE_CHARS)?;
        check_time(&format!("{p}/recorded_at"), self.recorded_at)?;
        match &self.event {
            AttachmentEvent::File {
                file_kind,
                receipt_id,
                file,
                signer,
                delivery_id,
            } => {
                // Deliveries are never removed: this stays true after any merge.
                if let Some(d) = delivery_id
                    && !deliveries.contains_key(d)
                {
                    return Err(ModelError::invalid(
                        format!("{p}/delivery_id"),
                        format!("delivery {d} does not exist"),
                    ));
                }
                file.check(&p)?;
                match (file_kind, signer) {
                    (FileKind::Signature, Some(signer)) => {
                        check_label(&format!("{p}/signer_name"), &signer.name, true)?;
                        check_label(&format!("{p}/signer_role"), &signer.role, false)?;
                        if !file.media_type.starts_with("image/") {
                            return Err(ModelError::invalid(
                                format!("{p}/media_type"),
                                "a signature is an image",
                            ));
                        }
                    }
                    (FileKind::Signature, None) => {
                        return Err(ModelError::Missing {
                            path: format!("{p}/signer_name"),
                        });
                    }
                    (_, Some(_)) => {
                        return Err(ModelError::invalid(
                            format!("{p}/signer_name"),
                            "only a signature has a signer",
                        ));
                    }
                    (_, None) => {}
                }
                if let Some(r) = receipt_id
                    && !receipts.contains_key(r)
                {
                    return Err(ModelError::AttachedToUnknownReceipt {
                        attachment: self.id.clone(),
                        receipt: r.clone(),
                    });
                }
            }
            AttachmentEvent::Removal { removes } => {
                let is_file = attachments.get(removes).is_some_and(|a| a.file().is_some());
                if !is_file {
                    return Err(ModelError::RemovesUnknownAttachment {
                        attachment: self.id.clone(),
                        removes: removes.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Shipment {
    /// Files attached and not removed, in id order.
    pub fn active_attachments(&self) -> impl Iterator<Item = &Attachment> {
        let removed: std::collections::BTreeSet<&AttachmentId> = self
            .attachments
            .values()
            .filter_map(|a| match &a.event {
                AttachmentEvent::Removal { removes } => Some(removes),
                AttachmentEvent::File { .. } => None,
            })
            .collect();
        self.attachments
            .values()
            .filter(move |a| a.file().is_some() && !removed.contains(&a.id))
    }

    /// Deliveries no later delivery replaces, in id order.
    pub fn active_deliveries(&self) -> impl Iterator<Item = &Delivery> {
        let replaced: std::collections::BTreeSet<&DeliveryId> = self
            .deliveries
            .values()
            .filter_map(|d| d.replaces.as_ref())
            .collect();
        self.deliveries
            .values()
            .filter(move |d| !replaced.contains(&d.id))
    }

    /// Units of `line` still outstanding if the receipt `voids` (when
    /// given) no longer counted: what a new count on the line is compared
    /// with. Wrong items and pure voids count towards nothing.
    pub fn outstanding_on(&self, line: &LineId, voids: Option<&ReceiptId>) -> u64 {
        let Some(expected) = self.lines.get(line).map(|l| l.quantity_expected) else {
            return 0;
        };
        let received: u64 = self
            .active_receipts()
            .filter(|r| &r.line_id == line && Some(&r.id) != voids)
            .filter(|r| r.condition != Condition::WrongItem)
            .map(|r| r.quantity)
            .sum();
        expected.saturating_sub(received)
    }

    /// Why `new` needs a reason, if it does and has none: its condition is
    /// not good, it rejects, or its quantity differs from what is
    /// outstanding on the line (short or over). The phone asks for the
    /// reason before saving; the server, which may merge concurrent counts
    /// the recorder never saw, checks only the rules that do not depend on
    /// them ([`Receipt`]'s own).
    pub fn reason_needed(&self, new: &NewReceipt) -> Option<&'static str> {
        if new.reason.is_some() {
            return None;
        }
        if new.stage == Some(Stage::Rejected) {
            return Some("a rejected receipt needs a reason");
        }
        if new.quantity == 0 {
            return None;
        }
        if new.condition != Condition::Good {
            return Some("units not in good order need a reason");
        }
        let outstanding = self.outstanding_on(&new.line_id, new.voids.as_ref());
        match new.quantity.cmp(&outstanding) {
            std::cmp::Ordering::Less => Some("fewer units than outstanding need a reason (short)"),
            std::cmp::Ordering::Greater => Some("more units than outstanding need a reason (over)"),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// The reason that fits `new` if it needs one ([`Self::reason_needed`]):
    /// the condition's own (damaged in transit, missing parts, wrong item),
    /// else short or over. `None` if it needs none, or none fits (a
    /// rejection of units in good order: the person must say why). The
    /// phone offers it; simulated receivers take it.
    pub fn suggested_reason(&self, new: &NewReceipt) -> Option<Reason> {
        self.reason_needed(new)?;
        match new.condition {
            Condition::Damaged => return Some(Reason::DamagedInTransit),
            Condition::MissingParts => return Some(Reason::MissingParts),
            Condition::WrongItem => return Some(Reason::WrongItem),
            Condition::Good => {}
        }
        let outstanding = self.outstanding_on(&new.line_id, new.voids.as_ref());
        match new.quantity.cmp(&outstanding) {
            std::cmp::Ordering::Less => Some(Reason::Short),
            std::cmp::Ordering::Greater => Some(Reason::Over),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// Receipts that a later receipt voids. Voids are final: voiding a void
    /// does not bring the first receipt back (record it again instead), which
    /// keeps the rule simple enough to explain to a receiver.
    pub fn voided(&self) -> std::collections::BTreeSet<&ReceiptId> {
        self.receipts
            .values()
            .filter_map(|r| r.voids.as_ref())
            .collect()
    }

    /// Receipts that count: every receipt no other receipt voids.
    pub fn active_receipts(&self) -> impl Iterator<Item = &Receipt> {
        let voided = self.voided();
        self.receipts
            .values()
            .filter(move |r| !voided.contains(&r.id))
    }

    /// Checks that `self` may follow `before`: events are never edited or
    /// removed, lines never removed, and the shipment keeps its id and its
    /// destination (which decides who may see it). The server
    /// runs this on every incoming change, so a phone that only appends (the
    /// only thing the app can do) can never be refused by it.
    pub fn check_transition_from(&self, before: &Shipment) -> Result<(), ModelError> {
        if self.header.id != before.header.id {
            return Err(ModelError::IdChanged {
                from: before.header.id.clone(),
                to: self.header.id.clone(),
            });
        }
        if self.header.destination_facility != before.header.destination_facility {
            return Err(ModelError::Immutable {
                path: "shipment/destination_facility".into(),
            });
        }
        for id in before.lines.keys() {
            if !self.lines.contains_key(id) {
                return Err(ModelError::Removed {
                    path: format!("lines/{id}"),
                });
            }
        }
        kept_unchanged("receipts", &before.receipts, &self.receipts)?;
        kept_unchanged("reviews", &before.reviews, &self.reviews)?;
        kept_unchanged("attachments", &before.attachments, &self.attachments)?;
        kept_unchanged("deliveries", &before.deliveries, &self.deliveries)?;
        kept_unchanged("unit_events", &before.unit_events, &self.unit_events)?;
        if self.schema < before.schema {
            return Err(ModelError::SchemaDowngrade {
                path: "schema".into(),
                from: before.schema,
                to: self.schema,
            });
        }
        Ok(())
    }
}

/// Events of `before` (receipts, reviews, attachments) are all still in
/// `after`, unchanged: recorded events are never edited or removed.
fn kept_unchanged<K: Ord + std::fmt::Display, V: PartialEq>(
    part: &str,
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
) -> Result<(), ModelError> {
    for (id, old) in before {
        match after.get(id) {
            None => {
                return Err(ModelError::Removed {
                    path: format!("{part}/{id}"),
                });
            }
            Some(new) if new != old => {
                return Err(ModelError::Immutable {
                    path: format!("{part}/{id}"),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}
