// The phone's client library: the wasm engine (shared Rust code) over the
// IndexedDB store, with login and sync over fetch. The UI (app.js) uses
// only this module; its API is typed in aidsync.d.ts.
//
// Every engine call goes through one queue: the engine is single-threaded
// Rust, and an async call (a save) must settle before the next one starts.
// Network requests run outside the queue, so recording never waits for a
// slow sync.

import init, { Engine } from "./pkg/aidsync_client_wasm.js";
import { openStore } from "./store.js";

/** The token is gone (expired, revoked, logged out): log in again. Nothing
 *  unsynced is lost; it syncs after the next login. */
export class AuthError extends Error {
  constructor(message) {
    super(message);
    this.name = "AuthError";
  }
}

/** The server answered something other than a sync response. */
export class ServerError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.name = "ServerError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ?? response.statusText;
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

function retryAfter(response) {
  const s = Number(response.headers.get("retry-after"));
  return Number.isFinite(s) && s > 0 ? s : null;
}

async function gzip(bytes) {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export class Phone {
  /** Opens the phone's local data (creating it on first use). */
  static async open({ server = "", dbName } = {}) {
    await init();
    const store = await openStore(dbName);
    const engine = await Engine.open(store);
    const session = await store.getSession();
    return new Phone(server, store, engine, session);
  }

  constructor(server, store, engine, session) {
    this.server = server;
    this.store = store;
    this.engine = engine;
    this.session = session;
    this.queue = Promise.resolve();
    this.inFlight = null;
    this.listeners = new Set();
    /** The last sync's report or error, for the status bar. */
    this.lastReport = null;
    this.lastError = null;
    /** Bytes the server holds of each file uploading now, by SHA-256. */
    this.uploadOffsets = new Map();
    this.uploading = null;
  }

  #run(op) {
    const result = this.queue.then(op);
    this.queue = result.catch(() => {});
    return result;
  }

  /** Calls `listener()` whenever pending records, sync state or login change. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  #changed() {
    for (const listener of this.listeners) listener();
  }

  /** The logged-in account `{id, name, role, facility, region}`, or null. */
  account() {
    return this.session?.user ?? null;
  }

  async login(user, password, deviceName = describeDevice(user)) {
    const response = await fetch(`${this.server}/api/v1/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user, password, device_name: deviceName }),
    });
    if (!response.ok) {
      throw new ServerError(response.status, await errorText(response), retryAfter(response));
    }
    const session = await response.json();
    const identity = {
      user: session.user.id,
      role: session.user.role,
      device: session.device_id,
      actor: session.actor_id,
    };
    // Refused (OtherUsersRecordsPending) if someone else's records still wait.
    await this.#run(() => this.engine.setIdentity(JSON.stringify(identity)));
    await this.store.putSession(session);
    this.session = session;
    this.lastError = null;
    this.#changed();
    return session.user;
  }

  /** Logs out: the token is revoked on the server when it can be reached.
   *  Unsynced records stay on the phone. */
  async logout() {
    const token = this.session?.token;
    if (token) {
      await fetch(`${this.server}/api/v1/logout`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      }).catch(() => {});
    }
    await this.store.clearSession();
    this.session = null;
    this.#changed();
  }

  /** Shipment rows: `{id, donor, reference, status, expected, received,
   *  damaged, outstanding, receipts, refused, ...}`. */
  async shipments() {
    return JSON.parse(await this.#run(() => this.engine.shipments()));
  }

  /** One shipment with lines, receipts (newest first) and per-line summary. */
  async shipment(id) {
    return JSON.parse(await this.#run(() => this.engine.shipment(id)));
  }

  /** Records a receipt; resolves once it is durable on the phone. Rejects
   *  with an Error named `Refused` (and the reason) if the model refuses it. */
  async recordReceipt(shipmentId, draft) {
    const receipt = { id: newId(), ...receiptJson(draft) };
    const saved = JSON.parse(
      await this.#run(() =>
        this.engine.recordReceipt(shipmentId, JSON.stringify(receipt), Date.now()),
      ),
    );
    this.#changed();
    this.#askBackgroundSync();
    return saved;
  }

  /** What is probably wrong with a receipt before it is recorded: more
   *  than is outstanding, serials not on the manifest or already received,
   *  a serial count that differs from the quantity. Empty when nothing is. */
  async receiptWarnings(shipmentId, draft) {
    const receipt = JSON.stringify({ id: "draft", ...receiptJson(draft) });
    return JSON.parse(await this.#run(() => this.engine.receiptWarnings(shipmentId, receipt)));
  }

  /** Whether a draft receipt needs a reason it does not have (short,
   *  over, not in good order, rejected): `{why, suggested}`, `why` null if
   *  not, `suggested` the reason that fits if one does. */
  async reasonNeeded(shipmentId, draft) {
    const receipt = JSON.stringify({ id: "draft", ...receiptJson(draft) });
    return JSON.parse(await this.#run(() => this.engine.reasonNeeded(shipmentId, receipt)));
  }

  /** Records a delivery (a truck's arrival: waybill, transporter,
   *  vehicle, seal, packages, arrival time, remarks); resolves once it is
   *  durable on the phone. */
  async recordDelivery(shipmentId, { waybill = "", transporter = "", vehicle = "", seal, sealNumber = "",
    packagesExpected = null, packagesReceived = null, arrivedAt, note = "", replaces = null }) {
    const delivery = {
      id: newId(),
      waybill,
      transporter,
      vehicle,
      seal,
      seal_number: sealNumber,
      packages_expected: packagesExpected,
      packages_received: packagesReceived,
      arrived_at: arrivedAt,
      note,
      replaces,
    };
    const saved = JSON.parse(
      await this.#run(() =>
        this.engine.recordDelivery(shipmentId, JSON.stringify(delivery), Date.now()),
      ),
    );
    this.#changed();
    this.#askBackgroundSync();
    return saved;
  }

  /** The shipment's serialised units, each with every step recorded
   *  (`steps[kind].current`: more than one means people recorded it
   *  differently at the same time), and the counts. */
  async units(shipmentId) {
    return JSON.parse(await this.#run(() => this.engine.units(shipmentId, Date.now())));
  }

  /** Records one step of a unit (`{lineId, serial, step, note, ...the
   *  step's fields as the server names them}`); resolves once durable. */
  async recordUnitStep(shipmentId, { lineId, serial, step, note = "", ...fields }) {
    const event = { id: newId(), line_id: lineId, serial, step, note, ...fields };
    const saved = JSON.parse(
      await this.#run(() =>
        this.engine.recordUnitStep(shipmentId, JSON.stringify(event), Date.now()),
      ),
    );
    this.#changed();
    this.#askBackgroundSync();
    return saved;
  }

  /** Cancels an earlier receipt with a receipt that voids it. */
  voidReceipt(shipmentId, receipt, note = "") {
    return this.recordReceipt(shipmentId, {
      lineId: receipt.line_id,
      quantity: 0,
      condition: "good",
      note,
      voids: receipt.id,
    });
  }

  /** Everything waiting to sync as a signed file, for weeks without a
   *  network: a courier takes it to a coordinator, who uploads it. The
   *  records stay waiting here until a sync acknowledges them. Resolves to
   *  `{blob, filename}`. */
  async carriedFile() {
    const token = this.session?.token;
    if (!token) throw new AuthError("not logged in");
    const bytes = await this.#run(() => this.engine.carriedFile(token, Date.now()));
    const day = new Date().toISOString().slice(0, 10);
    return {
      blob: new Blob([bytes], { type: "application/octet-stream" }),
      filename: `aidsync-${this.session.user.id}-${day}.aidsync`,
    };
  }

  /** Recovers a shipment the server refuses: rebuilds it from the server's
   *  copy and records this user's unsynced receipts, deliveries and unit
   *  steps again. Resolves to `{kept: Receipt[], discarded: {receipt,
   *  reason}[], kept_deliveries, discarded_deliveries: {delivery, reason}[],
   *  kept_unit_steps, discarded_unit_steps: {event, reason}[]}`; the
   *  discarded ones are gone from the phone, so show them. */
  async discardRefused(shipmentId) {
    const recovery = JSON.parse(await this.#run(() => this.engine.discardRefused(shipmentId)));
    this.lastReport = null;
    this.#changed();
    if (recovery.kept.length || recovery.kept_deliveries.length || recovery.kept_unit_steps.length) {
      this.#askBackgroundSync();
    }
    return recovery;
  }

  /** Attaches a file (a photo already shrunk by `preparePhoto`, a PDF or
   *  image document, a drawn signature) to a receipt or to the shipment.
   *  The bytes are stored on the phone first, then the record that names
   *  them: resolves once both are durable. The bytes upload after the
   *  records sync (`uploadFiles`). `kind`: photo, document or signature;
   *  `deliveryId`: the delivery (truck) it belongs to, e.g. a signature at
   *  its goods-received note. */
  async attach(shipmentId, { blob, kind, receiptId = null, deliveryId = null, note = "", signer = null, width = null, height = null }) {
    if (blob.size > MAX_ATTACHMENT_BYTES) {
      const error = new Error(`the file has ${blob.size} bytes; attachments take up to ${MAX_ATTACHMENT_BYTES}`);
      error.name = "TooLarge";
      throw error;
    }
    const sha256 = await digest(blob);
    const existing = await this.store.getFile(sha256);
    if (!existing || existing.state === "refused") {
      // New, or refused before (attaching it again is the way to retry).
      await this.store.putFile({
        sha256, bytes: blob, media_type: blob.type, size: blob.size,
        state: "waiting", reason: null, attempts: 0, next_attempt_at: 0,
      });
    }
    const attachment = {
      id: newId(),
      file_kind: kind,
      receipt_id: receiptId,
      delivery_id: deliveryId,
      file: { sha256, media_type: blob.type, size: blob.size, width, height },
      signer,
      note,
    };
    let saved;
    try {
      saved = JSON.parse(
        await this.#run(() =>
          this.engine.recordAttachment(shipmentId, JSON.stringify(attachment), Date.now()),
        ),
      );
    } catch (e) {
      // No record names the bytes: do not keep (or try to upload) them.
      if (!existing) await this.store.deleteFile(sha256).catch(() => {});
      throw e;
    }
    this.#changed();
    this.#askBackgroundSync();
    return saved;
  }

  /** Removes an attached file, recording who, when and why. */
  async removeAttachment(shipmentId, attachmentId, note = "") {
    const saved = JSON.parse(
      await this.#run(() =>
        this.engine.removeAttachment(shipmentId, newId(), attachmentId, note, Date.now()),
      ),
    );
    this.#changed();
    return saved;
  }

  /** Where each file on this phone stands: `{sha256, size, media_type,
   *  state: "waiting" | "uploading" | "done" | "refused", offset, reason}`. */
  async files() {
    const files = await this.store.files();
    return files.map(({ bytes, ...file }) => {
      const offset = this.uploadOffsets.get(file.sha256);
      const uploading = file.state === "waiting" && offset !== undefined;
      return { ...file, state: uploading ? "uploading" : file.state, offset: offset ?? (file.state === "done" ? file.size : 0) };
    });
  }

  /** The goods-received note of one delivery, as the server writes it
   *  (a PDF of everything synced so far). Resolves to `{blob, filename}`;
   *  rejects with an Error named `NotSynced` while the server does not
   *  have the delivery yet, `AuthError` when the login is gone, and
   *  `ServerError` otherwise (offline: a TypeError from fetch). */
  async goodsReceivedNote(shipmentId, deliveryId) {
    const token = this.session?.token;
    if (!token) throw new AuthError("log in to download the note");
    const id = encodeURIComponent(shipmentId);
    const response = await fetch(
      `${this.server}/api/v1/shipments/${id}/grn.pdf?delivery=${encodeURIComponent(deliveryId)}`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    if (response.status === 401) throw new AuthError(await errorText(response));
    if (response.status === 404) {
      const error = new Error(await errorText(response));
      error.name = "NotSynced";
      throw error;
    }
    if (!response.ok) throw new ServerError(response.status, await errorText(response));
    return { blob: await response.blob(), filename: `${shipmentId}-grn-${deliveryId}.pdf` };
  }

  /** An URL showing a file: its bytes on this phone, or else the server's
   *  thumbnail (or the whole file). Revoke it when done. */
  async fileUrl(sha256, { thumbnail = true } = {}) {
    const local = await this.store.getFile(sha256);
    if (local?.bytes) return URL.createObjectURL(local.bytes);
    const token = this.session?.token;
    if (!token) return null;
    const path = `${this.server}/api/v1/blobs/${sha256}${thumbnail ? "/thumbnail" : ""}`;
    const response = await fetch(path, { headers: { authorization: `Bearer ${token}` } }).catch(() => null);
    if (!response?.ok) return null;
    return URL.createObjectURL(await response.blob());
  }

  /** Uploads every waiting file whose time has come, each resuming from
   *  the bytes the server holds. One failing file waits (with backoff) and
   *  never holds up the others. Concurrent calls share one pass. */
  uploadFiles() {
    if (!this.uploading) {
      this.uploading = this.#uploadAll().finally(() => {
        this.uploading = null;
        this.#changed();
      });
    }
    return this.uploading;
  }

  async #uploadAll() {
    for (const file of await this.store.files()) {
      if (file.state !== "waiting" || (file.next_attempt_at ?? 0) > Date.now()) continue;
      if (!this.session?.token) return;
      try {
        await this.#upload(file);
      } catch (e) {
        if (e instanceof AuthError) return;
        // Back off: 30 s, 1 min, 2 min… up to an hour, then keep trying hourly.
        const attempts = (file.attempts ?? 0) + 1;
        const wait = e.retryAfter ? e.retryAfter * 1000 : Math.min(3_600_000, 30_000 * 2 ** (attempts - 1));
        await this.store.putFile({ ...file, attempts, reason: e.message, next_attempt_at: Date.now() + wait });
      } finally {
        this.uploadOffsets.delete(file.sha256);
      }
    }
  }

  async #upload(file) {
    const url = `${this.server}/api/v1/uploads/${file.sha256}`;
    const auth = () => ({ authorization: `Bearer ${this.session?.token}` });
    const status = async () => {
      const response = await fetch(url, { headers: auth() });
      if (response.status === 401) throw new AuthError(await errorText(response));
      // The record naming it has not reached the server yet: next sync.
      if (response.status === 404) return null;
      if (!response.ok) throw new ServerError(response.status, await errorText(response), retryAfter(response));
      return response.json();
    };
    let state = await status();
    if (!state) return;
    let offset = state.offset;
    while (!state.complete) {
      this.uploadOffsets.set(file.sha256, offset);
      this.#changed();
      const chunk = file.bytes.slice(offset, offset + UPLOAD_CHUNK_BYTES);
      const response = await fetch(url, {
        method: "PATCH",
        headers: {
          ...auth(),
          "content-type": "application/offset+octet-stream",
          "upload-offset": String(offset),
          "upload-length": String(file.size),
        },
        body: chunk,
      });
      if (response.status === 409) {
        // A lost answer: the server holds more (or less) than we thought.
        // The same offset again means something else is wrong: back off.
        state = await status();
        if (!state) return;
        if (state.offset === offset && !state.complete) {
          throw new ServerError(409, await errorText(response), null);
        }
        offset = state.offset;
        continue;
      }
      if (response.status === 413 || response.status === 422) {
        await this.store.putFile({ ...file, state: "refused", reason: await errorText(response) });
        return;
      }
      if (response.status === 401) throw new AuthError(await errorText(response));
      if (!response.ok) throw new ServerError(response.status, await errorText(response), retryAfter(response));
      state = await response.json();
      offset = state.offset;
    }
    // On the server: the phone's copy is no longer the only one. The bytes
    // stay for showing; a later version may free them.
    await this.store.putFile({ ...file, state: "done", reason: null });
  }

  /** Records waiting for the server. */
  pending() {
    return this.#run(() => this.engine.pending());
  }

  /** When the last sync succeeded (ms since epoch), or undefined. */
  lastSyncAt() {
    return this.#run(() => this.engine.lastSyncAt());
  }

  /** One sync (more rounds if the server asks). Concurrent calls share it. */
  sync() {
    if (!this.inFlight) {
      this.inFlight = this.#sync().finally(() => {
        this.inFlight = null;
        this.#changed();
      });
      this.#changed();
    }
    return this.inFlight;
  }

  async #sync() {
    const token = this.session?.token;
    if (!token) throw new AuthError("not logged in");
    try {
      let report = null;
      for (let round = 0; round < 3; round++) {
        const body = await this.#run(() => this.engine.syncRequest());
        const compressed = await gzip(body);
        const headers = {
          "content-type": "application/cbor",
          authorization: `Bearer ${token}`,
        };
        if (compressed) headers["content-encoding"] = "gzip";
        const response = await fetch(`${this.server}/api/v1/sync`, {
          method: "POST",
          headers,
          body: compressed ?? body,
        });
        if (response.status === 401) {
          await this.store.clearSession();
          this.session = null;
          throw new AuthError(await errorText(response));
        }
        const type = response.headers.get("content-type") ?? "";
        if (!type.startsWith("application/cbor")) {
          throw new ServerError(response.status, await errorText(response), retryAfter(response));
        }
        const answer = new Uint8Array(await response.arrayBuffer());
        report = JSON.parse(
          await this.#run(() => this.engine.applyResponse(answer, Date.now())),
        );
        if (!report.again) break;
      }
      this.lastReport = report;
      this.lastError = null;
      // Records first, always; the bytes follow, never holding them up.
      this.uploadFiles();
      return report;
    } catch (e) {
      this.lastError = e;
      throw e;
    }
  }

  /** Sync on start, when the network comes back, when the app is shown,
   *  and on a timer: soon while records wait, with exponential backoff and
   *  jitter after failures. Returns a function that stops it. */
  startAutoSync({ idleMs = 5 * 60_000, pendingMs = 30_000, maxMs = 30 * 60_000 } = {}) {
    let timer = null;
    let failures = 0;
    let stopped = false;
    const schedule = async () => {
      clearTimeout(timer);
      if (stopped) return;
      const base = failures > 0
        ? Math.min(maxMs, pendingMs * 2 ** failures)
        : (await this.pending()) > 0 ? pendingMs : idleMs;
      const jitter = base * (0.8 + 0.4 * Math.random());
      timer = setTimeout(attempt, jitter);
    };
    const attempt = async () => {
      if (stopped) return;
      if (this.session) {
        try {
          await this.sync();
          failures = 0;
        } catch {
          failures += 1;
        }
      }
      // Logged out or not, keep the timer: a login may come any time.
      schedule();
    };
    const now = () => {
      failures = 0;
      attempt();
    };
    const onVisible = () => document.visibilityState === "visible" && now();
    addEventListener("online", now);
    document.addEventListener("visibilitychange", onVisible);
    navigator.serviceWorker?.addEventListener("message", (event) => {
      if (event.data === "aidsync-sync") now();
    });
    now();
    return () => {
      stopped = true;
      clearTimeout(timer);
      removeEventListener("online", now);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }

  /** Where the browser has Background Sync, ask it to wake the app's
   *  service worker when the network is back. */
  #askBackgroundSync() {
    navigator.serviceWorker?.ready
      .then((registration) => registration.sync?.register("aidsync-outbox"))
      .catch(() => {});
  }
}

/** Chunk size of uploads: small enough that a 2G link finishes one in
 *  seconds (and a cut costs at most that), large enough that the headers
 *  are a small share. */
export const UPLOAD_CHUNK_BYTES = 128 * 1024;

/** Largest file the server takes by default (`--max-attachment-bytes`):
 *  refused on the phone before anything is recorded. */
export const MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024;

/** Longest side of a photo as the phone keeps it, in pixels. */
const PHOTO_PIXELS = 1600;

/** A photo as the phone keeps and sends it: turned upright as its EXIF
 *  orientation says, at most 1600 px on its longer side, re-encoded as
 *  JPEG at quality 0.7. Drawing it on a canvas drops every metadata field,
 *  the location included. Resolves to `{blob, width, height}`. */
export async function preparePhoto(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, PHOTO_PIXELS / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0, width, height);
  bitmap.close?.();
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the photo could not be encoded"))), "image/jpeg", 0.7));
  return { blob, width, height };
}

/** SHA-256 of a Blob, as 64 lowercase hex digits. */
async function digest(blob) {
  // Browsers offer SHA-256 only to pages over https (or on localhost).
  if (!globalThis.crypto?.subtle) throw new Error("attaching files needs the app over https");
  const hash = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh random id (UUID v4). `crypto.randomUUID` exists only in secure
 *  contexts (https, localhost); `getRandomValues` everywhere. */
/** A draft receipt as the page holds it, as the model's JSON. */
function receiptJson({ lineId, quantity, condition, serials = [], note = "", voids = null,
  stage = null, reason = null, deliveryId = null }) {
  return {
    line_id: lineId,
    quantity,
    condition,
    serials,
    note,
    voids,
    stage,
    reason,
    delivery_id: deliveryId,
  };
}

function newId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A device name a person recognises in the admin's list ("anna's phone
 *  (Android, Chrome)"), not the browser's user-agent string. */
function describeDevice(user) {
  const ua = navigator.userAgent;
  const system = [["Android", /Android/], ["iPhone", /iPhone/], ["iPad", /iPad/], ["Windows", /Windows/],
    ["macOS", /Mac OS X/], ["Linux", /Linux/]].find(([, re]) => re.test(ua))?.[0];
  const browser = [["Firefox", /Firefox\//], ["Edge", /Edg\//], ["Chrome", /Chrome\//], ["Safari", /Safari\//]]
    .find(([, re]) => re.test(ua))?.[0];
  const kind = /Mobi|Android|iPhone/.test(ua) ? "phone" : "device";
  const what = [system, browser].filter(Boolean).join(", ");
  return `${user}'s ${kind}${what ? ` (${what})` : ""}`.slice(0, 120);
}
