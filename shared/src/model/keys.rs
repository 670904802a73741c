//! Property names inside a shipment document, and the fields each map may
//! hold. Changing one is a schema change.
//!
//! Every map of the model has a closed set of keys, listed below next to the
//! names they are made of; the reader refuses any other key, wherever it
//! appears, with [`ModelError::UnknownField`](super::ModelError::UnknownField).
//! Without that, anyone allowed to add a receipt could also hang arbitrary
//! data (a 100 kB blob, say) on the document root, the header or their own
//! receipt, and every replica would store and replicate it.
//!
//! The lists belong to [`SCHEMA_VERSION`](super::SCHEMA_VERSION), which the
//! reader checks before anything else. A later version that needs a new
//! field adds its key here and bumps the version; documents of the older
//! version still read, because the new list only grows. A document of a
//! version newer than this build is never judged by these lists: it is
//! refused as a whole ([`ModelError::UnsupportedSchema`](super::ModelError::UnsupportedSchema)),
//! since a build cannot vouch for fields it does not know — and if a newer
//! version number alone made unknown keys acceptable, an attacker would
//! simply overwrite `schema` to smuggle them in.
//!
//! Lists (`serials`, `serials_expected`, `resolves`) have no keys; the reader
//! refuses any item in them that is not text.

pub const SCHEMA: &str = "schema";
pub const SHIPMENT: &str = "shipment";
pub const LINES: &str = "lines";
pub const RECEIPTS: &str = "receipts";
pub const REVIEWS: &str = "reviews";
pub const ATTACHMENTS: &str = "attachments";
pub const DELIVERIES: &str = "deliveries";
pub const UNIT_EVENTS: &str = "unit_events";

/// Keys of the document root in schema 1. `lines`, `receipts` and
/// `reviews` are keyed by ids, so their keys are checked as ids rather than
/// against a list.
pub const ROOT_FIELDS_V1: &[&str] = &[SCHEMA, SHIPMENT, LINES, RECEIPTS, REVIEWS];

/// Keys of the document root in schema 2: `attachments` joins, keyed by
/// ids like the other event maps.
pub const ROOT_FIELDS_V2: &[&str] = &[SCHEMA, SHIPMENT, LINES, RECEIPTS, REVIEWS, ATTACHMENTS];

/// Keys of the document root in schema 3: `deliveries` joins.
pub const ROOT_FIELDS_V3: &[&str] = &[
    SCHEMA,
    SHIPMENT,
    LINES,
    RECEIPTS,
    REVIEWS,
    ATTACHMENTS,
    DELIVERIES,
];

/// Keys of the document root from schema 4 on: `unit_events` joins.
pub const ROOT_FIELDS: &[&str] = &[
    SCHEMA,
    SHIPMENT,
    LINES,
    RECEIPTS,
    REVIEWS,
    ATTACHMENTS,
    DELIVERIES,
    UNIT_EVENTS,
];

pub const ID: &str = "id";
pub const DONOR: &str = "donor";
pub const PROGRAMME: &str = "programme";
pub const REFERENCE: &str = "reference";
pub const DESTINATION_FACILITY: &str = "destination_facility";
pub const EXPECTED_ON: &str = "expected_on";
pub const CREATED_BY: &str = "created_by";
pub const CREATED_AT: &str = "created_at";
pub const NOTE: &str = "note";

/// Keys of the `shipment` header map.
pub const HEADER_FIELDS: &[&str] = &[
    ID,
    DONOR,
    PROGRAMME,
    REFERENCE,
    DESTINATION_FACILITY,
    EXPECTED_ON,
    CREATED_BY,
    CREATED_AT,
    NOTE,
];

pub const ITEM: &str = "item";
pub const CATEGORY: &str = "category";
pub const UNIT: &str = "unit";
pub const QUANTITY_EXPECTED: &str = "quantity_expected";
pub const SERIALS_EXPECTED: &str = "serials_expected";

pub const ACCESSORIES: &str = "accessories";
pub const UNIT_VALUE: &str = "unit_value";

/// Keys of one line (`lines/<line_id>`) up to schema 3; its id is its key
/// in `lines`.
pub const LINE_FIELDS_V3: &[&str] = &[ITEM, CATEGORY, UNIT, QUANTITY_EXPECTED, SERIALS_EXPECTED];

/// Keys of one line from schema 4 on: `accessories` and `unit_value` join,
/// both optional (lines written before stay valid).
pub const LINE_FIELDS: &[&str] = &[
    ITEM,
    CATEGORY,
    UNIT,
    QUANTITY_EXPECTED,
    SERIALS_EXPECTED,
    ACCESSORIES,
    UNIT_VALUE,
];

pub const LINE_ID: &str = "line_id";
pub const QUANTITY: &str = "quantity";
pub const CONDITION: &str = "condition";
pub const SERIALS: &str = "serials";
pub const RECORDED_BY: &str = "recorded_by";
pub const DEVICE_ID: &str = "device_id";
pub const RECORDED_AT: &str = "recorded_at";
pub const VOIDS: &str = "voids";
pub const STAGE: &str = "stage";
pub const REASON: &str = "reason";
pub const DELIVERY_ID: &str = "delivery_id";

/// Keys of one receipt (`receipts/<receipt_id>`) up to schema 2; `voids`
/// is optional.
pub const RECEIPT_FIELDS_V2: &[&str] = &[
    LINE_ID,
    QUANTITY,
    CONDITION,
    SERIALS,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
    VOIDS,
];

/// Keys of one receipt from schema 3 on: `stage`, `reason` and
/// `delivery_id` join, all optional (receipts recorded before stay valid).
pub const RECEIPT_FIELDS: &[&str] = &[
    LINE_ID,
    QUANTITY,
    CONDITION,
    SERIALS,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
    VOIDS,
    STAGE,
    REASON,
    DELIVERY_ID,
];

pub const BY: &str = "by";
pub const AT: &str = "at";
pub const VERDICT: &str = "verdict";
pub const RESOLVES: &str = "resolves";

/// Keys of one review (`reviews/<review_id>`); `verdict` is optional.
pub const REVIEW_FIELDS: &[&str] = &[BY, AT, NOTE, VERDICT, RESOLVES];

pub const KIND: &str = "kind";
pub const RECEIPT_ID: &str = "receipt_id";
pub const SHA256: &str = "sha256";
pub const MEDIA_TYPE: &str = "media_type";
pub const SIZE: &str = "size";
pub const WIDTH: &str = "width";
pub const HEIGHT: &str = "height";
pub const SIGNER_NAME: &str = "signer_name";
pub const SIGNER_ROLE: &str = "signer_role";
pub const REMOVES: &str = "removes";

/// Keys of one attachment event (`attachments/<attachment_id>`) up to
/// schema 3. A file (`kind` photo, document or signature) has the file's
/// keys, and a signature the signer's; a removal (`kind` removal) has
/// `removes` instead. The reader refuses a key that does not belong to the
/// kind.
pub const ATTACHMENT_FIELDS_V3: &[&str] = &[
    KIND,
    RECEIPT_ID,
    SHA256,
    MEDIA_TYPE,
    SIZE,
    WIDTH,
    HEIGHT,
    SIGNER_NAME,
    SIGNER_ROLE,
    REMOVES,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
];

/// Keys of one attachment event from schema 4 on: a file may name its
/// delivery (`delivery_id`, optional).
pub const ATTACHMENT_FIELDS: &[&str] = &[
    DELIVERY_ID,
    KIND,
    RECEIPT_ID,
    SHA256,
    MEDIA_TYPE,
    SIZE,
    WIDTH,
    HEIGHT,
    SIGNER_NAME,
    SIGNER_ROLE,
    REMOVES,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
];

/// The keys only a file has, and only a signature.
pub const FILE_ONLY_FIELDS: &[&str] = &[
    RECEIPT_ID,
    SHA256,
    MEDIA_TYPE,
    SIZE,
    WIDTH,
    HEIGHT,
    DELIVERY_ID,
];
pub const SIGNATURE_ONLY_FIELDS: &[&str] = &[SIGNER_NAME, SIGNER_ROLE];

pub const WAYBILL: &str = "waybill";
pub const TRANSPORTER: &str = "transporter";
pub const VEHICLE: &str = "vehicle";
pub const SEAL: &str = "seal";
pub const SEAL_NUMBER: &str = "seal_number";
pub const PACKAGES_EXPECTED: &str = "packages_expected";
pub const PACKAGES_RECEIVED: &str = "packages_received";
pub const ARRIVED_AT: &str = "arrived_at";
pub const REPLACES: &str = "replaces";

/// Keys of one delivery (`deliveries/<delivery_id>`, schema 3 on): the
/// papers and state of one truck's arrival. `packages_expected`,
/// `packages_received` and `replaces` are optional.
pub const DELIVERY_FIELDS: &[&str] = &[
    WAYBILL,
    TRANSPORTER,
    VEHICLE,
    SEAL,
    SEAL_NUMBER,
    PACKAGES_EXPECTED,
    PACKAGES_RECEIVED,
    ARRIVED_AT,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
    REPLACES,
];

pub const SERIAL: &str = "serial";
pub const STEP: &str = "step";
pub const SUPERSEDES: &str = "supersedes";
pub const CHECKED: &str = "checked";
pub const ON: &str = "on";
pub const INSTALLER: &str = "installer";
pub const RESULT: &str = "result";
pub const PEOPLE: &str = "people";
pub const TRAINER: &str = "trainer";
pub const STARTS_ON: &str = "starts_on";
pub const ENDS_ON: &str = "ends_on";
pub const SERVICE_AGENT: &str = "service_agent";
pub const DEPARTMENT: &str = "department";
pub const ROOM: &str = "room";
pub const CUSTODIAN: &str = "custodian";
pub const STATUS: &str = "status";
pub const ASSET_NUMBER: &str = "asset_number";

/// Keys every unit event (`unit_events/<event_id>`, schema 4 on) has.
pub const UNIT_EVENT_COMMON_FIELDS: &[&str] = &[
    LINE_ID,
    SERIAL,
    STEP,
    SUPERSEDES,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
];

/// Every key a unit event of any step may hold: what the map is first
/// checked against, before its step's own list.
pub const UNIT_EVENT_FIELDS: &[&str] = &[
    LINE_ID,
    SERIAL,
    STEP,
    SUPERSEDES,
    NOTE,
    RECORDED_BY,
    DEVICE_ID,
    RECORDED_AT,
    CHECKED,
    ON,
    INSTALLER,
    RESULT,
    PEOPLE,
    TRAINER,
    STARTS_ON,
    ENDS_ON,
    SERVICE_AGENT,
    DEPARTMENT,
    ROOM,
    CUSTODIAN,
    STATUS,
    ASSET_NUMBER,
];

/// The keys one step adds to the common ones; the reader refuses a key
/// of another step like an unknown one.
pub fn unit_step_fields(step: super::StepKind) -> &'static [&'static str] {
    use super::StepKind as S;
    match step {
        S::Checklist => &[CHECKED],
        S::Installed => &[ON, INSTALLER],
        S::Commissioned => &[ON],
        S::AcceptanceTest => &[RESULT, ON],
        S::Training => &[ON, PEOPLE, TRAINER],
        S::Warranty => &[STARTS_ON, ENDS_ON, SERVICE_AGENT],
        S::Location => &[DEPARTMENT, ROOM, CUSTODIAN],
        S::Status => &[STATUS],
        S::HandedOver => &[ON, ASSET_NUMBER],
    }
}
