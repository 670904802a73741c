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
  async recordReceipt(shipmentId, { lineId, quantity, condition, serials = [], note = "", voids = null }) {
    const receipt = {
      id: newId(),
      line_id: lineId,
      quantity,
      condition,
      serials,
      note,
      voids,
    };
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
  async receiptWarnings(shipmentId, { lineId, quantity, condition, serials = [], note = "", voids = null }) {
    const draft = { id: "draft", line_id: lineId, quantity, condition, serials, note, voids };
    return JSON.parse(await this.#run(() => this.engine.receiptWarnings(shipmentId, JSON.stringify(draft))));
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

  /** Recovers a shipment the server refuses: rebuilds it from the server's
   *  copy and records this user's unsynced receipts again. Resolves to
   *  `{kept: Receipt[], discarded: {receipt, reason}[]}`; the discarded ones
   *  are gone from the phone, so show them. */
  async discardRefused(shipmentId) {
    const recovery = JSON.parse(await this.#run(() => this.engine.discardRefused(shipmentId)));
    this.lastReport = null;
    this.#changed();
    if (recovery.kept.length) this.#askBackgroundSync();
    return recovery;
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

/** A fresh random id (UUID v4). `crypto.randomUUID` exists only in secure
 *  contexts (https, localhost); `getRandomValues` everywhere. */
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
