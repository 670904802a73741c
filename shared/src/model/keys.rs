//! Property names inside a shipment document. Changing one is a schema change.

pub const SCHEMA: &str = "schema";
pub const SHIPMENT: &str = "shipment";
pub const LINES: &str = "lines";
pub const RECEIPTS: &str = "receipts";
pub const REVIEWS: &str = "reviews";

pub const ID: &str = "id";
pub const DONOR: &str = "donor";
pub const PROGRAMME: &str = "programme";
pub const REFERENCE: &str = "reference";
pub const DESTINATION_FACILITY: &str = "destination_facility";
pub const EXPECTED_ON: &str = "expected_on";
pub const CREATED_BY: &str = "created_by";
pub const CREATED_AT: &str = "created_at";
pub const NOTE: &str = "note";

pub const ITEM: &str = "item";
pub const CATEGORY: &str = "category";
pub const UNIT: &str = "unit";
pub const QUANTITY_EXPECTED: &str = "quantity_expected";
pub const SERIALS_EXPECTED: &str = "serials_expected";

pub const LINE_ID: &str = "line_id";
pub const QUANTITY: &str = "quantity";
pub const CONDITION: &str = "condition";
pub const SERIALS: &str = "serials";
pub const RECORDED_BY: &str = "recorded_by";
pub const DEVICE_ID: &str = "device_id";
pub const RECORDED_AT: &str = "recorded_at";
pub const VOIDS: &str = "voids";

pub const BY: &str = "by";
pub const AT: &str = "at";
pub const VERDICT: &str = "verdict";
pub const RESOLVES: &str = "resolves";
