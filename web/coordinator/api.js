// The coordinator dashboard's side of the REST API: the session (kept in
// localStorage, so a reload or a second tab stays logged in), JSON calls
// with the bearer token, and file downloads (which need the header too, so
// they go through fetch and a Blob rather than a plain link).

const SESSION = "aidsync.coordinator.session";

/** The server answered with an error: `status` and its `{"error"}` text;
 *  `rows` for a refused manifest (`[{line, column, reason}]`). */
export class ApiError extends Error {
  constructor(status, message, { rows = [], retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.rows = rows;
    this.retryAfter = retryAfter;
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const seconds = Number(response.headers.get("retry-after"));
  return new ApiError(response.status, body?.error ?? (response.statusText || `HTTP ${response.status}`), {
    rows: Array.isArray(body?.rows) ? body.rows : [],
    retryAfter: Number.isFinite(seconds) && seconds > 0 ? seconds : null,
  });
}

/** The filter's non-empty fields as a query string (no leading `?`). */
export function filterQuery(filter) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (value) query.set(key, value);
  return query.toString();
}

export class Api {
  constructor() {
    this.session = Api.#load();
    /** Called when the server no longer takes the token (401). */
    this.onExpired = () => {};
  }

  static #load() {
    try {
      const session = JSON.parse(localStorage.getItem(SESSION) ?? "null");
      if (!session?.token || !session?.user) return null;
      // The server would refuse it anyway; this spares a round trip.
      if (session.expires_at && session.expires_at < Date.now()) return null;
      return session;
    } catch {
      return null;
    }
  }

  /** `{id, name, role, facility, region}` of who is logged in, or null. */
  user() {
    return this.session?.user ?? null;
  }

  async login(user, password) {
    const response = await fetch("/api/v1/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        user,
        password,
        device_name: `Coordinator dashboard · ${navigator.userAgent}`.slice(0, 120),
      }),
    });
    if (!response.ok) throw await failure(response);
    const session = await response.json();
    this.session = session;
    localStorage.setItem(SESSION, JSON.stringify(session));
    return session.user;
  }

  /** Forgets the session here, and revokes the token on the server when
   *  it can (a failure there must not keep anyone logged in here). */
  async logout() {
    const token = this.session?.token;
    this.forget();
    if (!token) return;
    await fetch("/api/v1/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } })
      .catch(() => {});
  }

  /** Asks the server who the token belongs to now (an account's role or
   *  facility may have changed since the login) and remembers it. */
  async refreshUser() {
    const me = await this.get("/api/v1/me");
    if (this.session && me?.user) {
      this.session = { ...this.session, user: me.user, expires_at: me.expires_at ?? this.session.expires_at };
      localStorage.setItem(SESSION, JSON.stringify(this.session));
    }
    return this.user();
  }

  forget() {
    this.session = null;
    localStorage.removeItem(SESSION);
  }

  headers(extra = {}) {
    return { authorization: `Bearer ${this.session?.token ?? ""}`, ...extra };
  }

  /** A response, or an ApiError for any error status. */
  async request(path, { method = "GET", body, contentType, signal } = {}) {
    const headers = this.headers(contentType ? { "content-type": contentType } : {});
    const response = await fetch(path, { method, headers, body, signal });
    if (response.ok) return response;
    const error = await failure(response);
    if (response.status === 401 && this.session) {
      this.forget();
      this.onExpired(error);
    }
    throw error;
  }

  async get(path, options) {
    return (await this.request(path, options)).json();
  }

  async post(path, value) {
    const response = await this.request(path, {
      method: "POST",
      body: JSON.stringify(value),
      contentType: "application/json",
    });
    return response.json();
  }

  /** Imports a CSV manifest: `{created, lines}`, or an ApiError with `rows`. */
  async importManifest(text) {
    const response = await this.request("/api/v1/shipments/import", {
      method: "POST",
      body: text,
      contentType: "text/csv; charset=utf-8",
    });
    return response.json();
  }

  /** Imports a phone's hand-carried file of records: the import's report
   *  `{user, device, accepted, refused, new_changes, documents}`. */
  async importCarried(file) {
    const response = await this.request("/api/v1/sync/import", {
      method: "POST",
      body: file,
      contentType: "application/octet-stream",
    });
    return response.json();
  }

  /** Any API file (a photo, a thumbnail, an export) as `{blob, filename}`. */
  async file(path, fallbackName) {
    const response = await this.request(path);
    const disposition = response.headers.get("content-disposition") ?? "";
    const filename = disposition.match(/filename="([^"]+)"/)?.[1] ?? fallbackName;
    return { blob: await response.blob(), filename };
  }

  /** A report as a file: `{blob, filename}`. */
  async download(name, format, filter) {
    const query = filterQuery(filter);
    const response = await this.request(`/api/v1/reports/${name}.${format}${query ? `?${query}` : ""}`);
    const disposition = response.headers.get("content-disposition") ?? "";
    const filename = disposition.match(/filename="([^"]+)"/)?.[1] ?? `aidsync-${name}.${format}`;
    return { blob: await response.blob(), filename };
  }
}

/** Hands `blob` to the browser as a download named `filename`. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has started the download; the URL can go once it has read it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
