// Live updates: `GET /api/v1/events` is a Server-Sent Events stream, read
// with fetch (EventSource cannot send the Authorization header) and parsed
// here. The stream only says *which* shipments changed; the dashboard then
// fetches what it shows. When the stream ends or stalls it is opened again
// with exponential backoff and jitter, and every (re)connection is reported
// so the page reloads what it may have missed meanwhile.

/** An SSE parser (the WHATWG event-stream rules): feed it text as it
 *  arrives, in chunks of any size; it calls `onEvent(type, data)` for every
 *  complete event. Comments (keep-alives) and `id`/`retry` are ignored. */
export function eventParser(onEvent) {
  let buffer = "";
  let type = "";
  let data = [];
  const line = (text) => {
    if (text === "") {
      if (data.length) onEvent(type || "message", data.join("\n"));
      type = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  };
  return (chunk) => {
    buffer += chunk;
    for (;;) {
      const end = buffer.search(/\r\n|\r|\n/);
      if (end < 0) return;
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (buffer[end] === "\r" && end === buffer.length - 1) return;
      const width = buffer.startsWith("\r\n", end) ? 2 : 1;
      line(buffer.slice(0, end));
      buffer = buffer.slice(end + width);
    }
  };
}

/** No byte for this long (the server sends keep-alive comments far more
 *  often) means the connection is dead without having said so: a phone
 *  that changed networks, a proxy that dropped it. */
const STALL_MS = 75_000;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** A connection that stayed up this long was healthy: the next failure
 *  starts the backoff over. */
const HEALTHY_MS = 10_000;

/**
 * The event stream, kept open. `open(signal)` performs the request and
 * resolves with a Response (it throws an error with a `status` for an HTTP
 * error). Callbacks: `onEvent(type, data)`, `onState(state, detail)` with
 * state `connecting` | `connected` | `waiting` ({retryInMs}) | `unavailable`
 * (the server has no event stream: poll instead) | `stopped`.
 */
export class LiveStream {
  constructor({ open, onEvent, onState }) {
    this.open = open;
    this.onEvent = onEvent;
    this.onState = onState;
    this.retryMs = FIRST_RETRY_MS;
    this.controller = null;
    this.timer = null;
    this.running = false;
    this.state = "stopped";
    this.wake = () => {
      if (this.running && this.state === "waiting") this.#connect();
    };
  }

  start() {
    if (this.running) return;
    this.running = true;
    addEventListener("online", this.wake);
    this.#connect();
  }

  stop() {
    this.running = false;
    removeEventListener("online", this.wake);
    clearTimeout(this.timer);
    this.controller?.abort();
    this.controller = null;
    this.#set("stopped");
  }

  #set(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  async #connect() {
    clearTimeout(this.timer);
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.#set("connecting");
    const openedAt = Date.now();
    let stall = null;
    const watch = () => {
      clearTimeout(stall);
      stall = setTimeout(() => controller.abort(), STALL_MS);
    };
    try {
      const response = await this.open(controller.signal);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      this.#set("connected");
      const feed = eventParser((type, data) => {
        this.retryMs = FIRST_RETRY_MS;
        this.onEvent(type, data);
      });
      watch();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        watch();
        feed(value);
      }
    } catch (error) {
      if (!this.running || this.controller !== controller) return;
      if (error?.status === 401 || error?.status === 403) return this.stop();
      if (error?.status === 404) {
        clearTimeout(stall);
        return this.#set("unavailable");
      }
    } finally {
      clearTimeout(stall);
    }
    if (!this.running || this.controller !== controller) return;
    if (Date.now() - openedAt > HEALTHY_MS) this.retryMs = FIRST_RETRY_MS;
    const wait = Math.round(this.retryMs * (0.7 + Math.random() * 0.6));
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.#set("waiting", { retryInMs: wait });
    this.timer = setTimeout(() => this.#connect(), wait);
  }
}
