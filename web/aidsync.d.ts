// Types of the phone's client library (aidsync.js). The engine underneath
// is Rust (client-wasm), typed in pkg/aidsync_client_wasm.d.ts.

export type Role = "receiver" | "coordinator" | "admin";
export type Condition = "good" | "damaged" | "missing_parts" | "wrong_item";
export type Status = "awaiting" | "partial" | "complete" | "discrepancy";
export type Stage = "provisional" | "accepted" | "rejected";
export type Reason = "short" | "over" | "damaged_in_transit" | "missing_parts" | "wrong_item" | "expired" | "other";
export type Seal = "intact" | "broken" | "none";

export interface Account {
  id: string;
  name: string;
  role: Role;
  facility: string | null;
  region: string | null;
}

export interface ShipmentRow {
  id: string;
  donor: string;
  programme: string;
  reference: string;
  destination_facility: string;
  expected_on: string | null;
  status: Status;
  expected: number;
  /** Counted per line up to its expected quantity: received + outstanding = expected. */
  received: number;
  damaged: number;
  outstanding: number;
  /** Units beyond their line's expected quantity. */
  surplus: number;
  wrong_item: number;
  receipts: number;
  /** The server's last refusal of this shipment's records, to show. */
  refused: string | null;
  /** What a search looks in, lowercased: id, donor, programme, reference, items, serial numbers. */
  search: string;
}

export interface Line {
  id: string;
  item: string;
  category: string;
  unit: string;
  quantity_expected: number;
  serials_expected: string[];
  /** Accessories, manuals and certificates each unit should come with. */
  accessories: string[];
  /** Estimated value of one unit, e.g. "125000.00 EUR". */
  unit_value: string | null;
}

export interface Receipt {
  id: string;
  line_id: string;
  quantity: number;
  condition: Condition;
  serials: string[];
  note: string;
  recorded_by: string;
  device_id: string;
  /** When the phone recorded it, ms since the epoch. */
  recorded_at: number;
  voids: string | null;
  /** Null on receipts recorded before stages (read as provisional). */
  stage: Stage | null;
  reason: Reason | null;
  delivery_id: string | null;
  /** A later receipt cancels this one. */
  voided: boolean;
}

/** A truck's arrival with its papers. */
export interface Delivery {
  id: string;
  waybill: string;
  transporter: string;
  vehicle: string;
  seal: Seal;
  seal_number: string;
  packages_expected: number | null;
  packages_received: number | null;
  /** ms since the epoch. */
  arrived_at: number;
  note: string;
  recorded_by: string;
  device_id: string;
  recorded_at: number;
  /** An earlier delivery this one corrects. */
  replaces: string | null;
  /** A later delivery corrects this one. */
  replaced: boolean;
}

export interface LineTotals {
  line_id: string;
  expected: number;
  received: number;
  /** `received` capped at `expected`: received_against_expected + outstanding = expected. */
  received_against_expected: number;
  good: number;
  damaged: number;
  missing_parts: number;
  wrong_item: number;
  outstanding: number;
  over_received: number;
  serials_missing: string[];
  serials_unexpected: string[];
}

export interface ShipmentDetail extends ShipmentRow {
  note: string;
  lines: Line[];
  /** Newest first. */
  receipts: Receipt[];
  reviews: { id: string; by: string; at: number; note: string; verdict: string | null; resolves: string[] }[];
  /** Newest first. */
  deliveries: Delivery[];
  /** Whether deliveries, stages and reasons may be recorded (schema 3). */
  can_record_delivery: boolean;
  summary: { status: Status; lines: LineTotals[]; expected: number; received: number; damaged: number; outstanding: number; surplus: number; wrong_item: number };
}

export interface SyncReport {
  accepted: number;
  /** [shipment id, reason] for each refused shipment. */
  refused: [string, string][];
  updated: number;
  again: boolean;
}

/** Something about a receipt that is probably a mistake (`shared::warnings`). */
export type ReceiptWarning =
  | { kind: "more_than_outstanding"; quantity: number; outstanding: number }
  | { kind: "serials_not_on_manifest"; serials: string[] }
  | { kind: "serials_already_received"; serials: string[]; earlier: { id: string; recorded_by: string; recorded_at: number }[] }
  | { kind: "serial_count_differs"; quantity: number; serials: number };

export interface NewReceipt {
  lineId: string;
  quantity: number;
  condition: Condition;
  serials?: string[];
  note?: string;
  /** The id of an earlier receipt this one cancels. */
  voids?: string | null;
  /** Provisional when not given. */
  stage?: Stage | null;
  /** Required when short, over, not in good order or rejected. */
  reason?: Reason | null;
  deliveryId?: string | null;
}

export interface NewDelivery {
  waybill?: string;
  transporter?: string;
  vehicle?: string;
  seal: Seal;
  sealNumber?: string;
  packagesExpected?: number | null;
  packagesReceived?: number | null;
  /** ms since the epoch. */
  arrivedAt: number;
  note?: string;
  replaces?: string | null;
}

export type StepKind = "checklist" | "installed" | "commissioned" | "acceptance_test" | "training"
  | "warranty" | "location" | "status" | "handed_over";

/** One step of one serialised unit; the fields besides these depend on
 *  `step` (dates YYYY-MM-DD): checklist {checked}, installed {on,
 *  installer}, commissioned {on}, acceptance_test {result, on}, training
 *  {on, people, trainer}, warranty {starts_on, ends_on, service_agent},
 *  location {department, room, custodian}, status {status}. */
export interface NewUnitStep {
  lineId: string;
  serial: string;
  step: StepKind;
  note?: string;
  [field: string]: unknown;
}

export interface UnitEvent {
  id: string;
  line_id: string;
  serial: string;
  step: StepKind;
  supersedes: string[];
  note: string;
  recorded_by: string;
  device_id: string;
  recorded_at: number;
  [field: string]: unknown;
}

export interface UnitRecord {
  line_id: string;
  serial: string;
  item: string;
  category: string;
  accessories: string[];
  received: { receipt_id: string; condition: Condition; stage: string; reason: Reason | null; recorded_at: number } | null;
  /** `current`: the events nothing supersedes, latest first (two or more:
   *  recorded differently at the same time); `history`: all, oldest first. */
  steps: Partial<Record<StepKind, { current: UnitEvent[]; history: UnitEvent[] }>>;
}

export interface UnitCounts {
  units: number; received: number; installed: number; commissioned: number; accepted: number;
  functioning: number; not_functioning: number; handed_over: number; in_conflict: number;
  warranty_ends_soon: number;
}

/** The token is gone (expired, revoked, logged out): log in again. */
export class AuthError extends Error {}

/** The server answered with an error (login refused, rate limit…). */
export class ServerError extends Error {
  status: number;
  /** Seconds to wait, from `Retry-After`. */
  retryAfter: number | null;
}

/**
 * Engine errors are `Error`s whose `name` is one of: `Refused` (the model
 * or the role says no; show `message`), `OtherUsersRecordsPending`,
 * `UnknownShipment`, `NotLoggedIn`, `NothingRefused`, `StoreFailed`, `CorruptStore`,
 * `BadResponse`, `BadInput`.
 */
export class Phone {
  static open(options?: { server?: string; dbName?: string }): Promise<Phone>;
  lastReport: SyncReport | null;
  lastError: Error | null;
  subscribe(listener: () => void): () => void;
  account(): Account | null;
  login(user: string, password: string, deviceName?: string): Promise<Account>;
  logout(): Promise<void>;
  shipments(): Promise<ShipmentRow[]>;
  shipment(id: string): Promise<ShipmentDetail>;
  recordReceipt(shipmentId: string, receipt: NewReceipt): Promise<Receipt>;
  /** What is probably wrong with a receipt before it is recorded. */
  receiptWarnings(shipmentId: string, receipt: NewReceipt): Promise<ReceiptWarning[]>;
  voidReceipt(shipmentId: string, receipt: Receipt, note?: string): Promise<Receipt>;
  /** Why a draft receipt needs a reason it does not have (`why`, null if
   *  it needs none) and the reason that fits, if one does. */
  reasonNeeded(shipmentId: string, receipt: NewReceipt): Promise<{ why: string | null; suggested: Reason | null }>;
  recordDelivery(shipmentId: string, delivery: NewDelivery): Promise<Delivery>;
  /** The server's goods-received note (PDF) of a synced delivery; rejects
   *  with `NotSynced` while the server does not have it yet. */
  goodsReceivedNote(shipmentId: string, deliveryId: string): Promise<{ blob: Blob; filename: string }>;
  /** The shipment's serialised units with every step, and the counts. */
  units(shipmentId: string): Promise<{ today: string; counts: UnitCounts; units: UnitRecord[] }>;
  recordUnitStep(shipmentId: string, step: NewUnitStep): Promise<UnitEvent>;
  /** Everything waiting to sync as a signed file to carry by hand. */
  carriedFile(): Promise<{ blob: Blob; filename: string }>;
  /** Rebuilds a refused shipment from the server's copy plus this user's
   *  unsynced receipts that are still valid; rejects with `NothingRefused`
   *  if the server refused nothing there. */
  discardRefused(shipmentId: string): Promise<{ kept: Receipt[]; discarded: { receipt: Receipt; reason: string }[] }>;
  pending(): Promise<number>;
  lastSyncAt(): Promise<number | undefined>;
  sync(): Promise<SyncReport>;
  startAutoSync(options?: { idleMs?: number; pendingMs?: number; maxMs?: number }): () => void;
}
