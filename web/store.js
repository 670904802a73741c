// The engine's durable store: IndexedDB, one object store per kind.
//
// Every write resolves only when its transaction has completed with
// `durability: "strict"`, i.e. the browser has flushed it: the engine says
// "saved" only after that, so a power cut loses at most the tap in flight.
// The bytes are opaque CBOR made by the engine; nothing here parses them.

const DB_NAME = "aidsync";
const DB_VERSION = 2;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function completed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
  });
}

/** Opens (creating if needed) the phone's database. */
export async function openStore(name = DB_NAME) {
  const request = indexedDB.open(name, DB_VERSION);
  request.onupgradeneeded = () => {
    const db = request.result;
    if (!db.objectStoreNames.contains("docs")) db.createObjectStore("docs");
    if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
    if (!db.objectStoreNames.contains("session")) db.createObjectStore("session");
    // Attached files' bytes, by SHA-256, until the server holds them (v2).
    if (!db.objectStoreNames.contains("files")) db.createObjectStore("files");
  };
  const db = await promised(request);
  return new IdbStore(db);
}

/** Implements the engine's `EngineStore` interface, plus the login session. */
export class IdbStore {
  constructor(db) {
    this.db = db;
  }

  async load() {
    const tx = this.db.transaction(["meta", "docs"], "readonly");
    const meta = promised(tx.objectStore("meta").get("meta"));
    const docs = promised(tx.objectStore("docs").getAll());
    return { meta: (await meta) ?? null, docs: await docs };
  }

  putDoc(id, bytes) {
    return this.#put("docs", id, bytes);
  }

  putMeta(bytes) {
    return this.#put("meta", "meta", bytes);
  }

  /** The login token and account, kept apart from the engine's data. */
  async getSession() {
    const tx = this.db.transaction("session", "readonly");
    return (await promised(tx.objectStore("session").get("session"))) ?? null;
  }

  putSession(session) {
    return this.#put("session", "session", session);
  }

  async clearSession() {
    const tx = this.db.transaction("session", "readwrite", { durability: "strict" });
    tx.objectStore("session").delete("session");
    await completed(tx);
  }

  /** An attached file: `{sha256, bytes: Blob, media_type, size, state:
   *  "waiting" | "done" | "refused", reason, attempts, next_attempt_at}`. */
  putFile(file) {
    return this.#put("files", file.sha256, file);
  }

  async deleteFile(sha256) {
    const tx = this.db.transaction("files", "readwrite", { durability: "strict" });
    tx.objectStore("files").delete(sha256);
    await completed(tx);
  }

  async getFile(sha256) {
    const tx = this.db.transaction("files", "readonly");
    return (await promised(tx.objectStore("files").get(sha256))) ?? null;
  }

  async files() {
    const tx = this.db.transaction("files", "readonly");
    return promised(tx.objectStore("files").getAll());
  }

  async #put(store, key, value) {
    const tx = this.db.transaction(store, "readwrite", { durability: "strict" });
    tx.objectStore(store).put(value, key);
    await completed(tx);
  }
}
