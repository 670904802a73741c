// The phone web app in a real browser: Debian's headless Chromium driven by
// playwright-core, a phone-sized window, against a real `aidsync serve
// --demo` on a temporary database. Run by scripts/test:
//
//   node --test tests/browser/
//
// Offline is the browser's own switch; a power cut is SIGKILL to the
// browser process, restarted on the same profile. Screenshots of the main
// screens go to tests/browser/artifacts/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PHONE, ROOT as root, accessibilityProblems, kill, launch, startServer } from "./harness.mjs";

const artifacts = join(root, "tests", "browser", "artifacts");
const SHIPMENT = "jica-2026-001"; // the demo's first shipment, to kharkiv-regional
const COORDINATOR_TOKEN = "demo-olena";

let server;
let base;
const temp = mkdtempSync(join(tmpdir(), "aidsync-browser-"));

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ proc: server, url: base } = await startServer(join(temp, "aidsync.db")));
});

after(() => {
  server?.kill("SIGTERM");
  rmSync(temp, { recursive: true, force: true });
});

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

async function login(page, user) {
  await page.goto(base);
  await page.fill("#login-user", user);
  await page.fill("#login-password", `${user}-demo-password`);
  await page.click("#login-submit");
  await page.waitForSelector(`[data-shipment="${SHIPMENT}"]`);
}

async function pending(page) {
  return Number(await page.getAttribute("#pending", "data-pending"));
}

/** Fills the receipt form and saves; `warned`: the app questions it first
 *  (more than outstanding, serials missing…), and it is saved anyway. */
async function recordReceipt(page, { line = "line-3", quantity = "1", condition = "good", serial = "", warned = false } = {}) {
  await page.click(`[data-line="${line}"] button.record`);
  await page.fill("#receipt-quantity", quantity);
  await page.selectOption("#receipt-condition", condition);
  if (serial) await page.fill("#receipt-serials", serial);
  await page.click("#receipt-save");
  if (warned) {
    await page.locator("#receipt-warnings").waitFor();
    await page.click("#receipt-save");
  }
}

async function serverShipment() {
  const response = await fetch(`${base}/api/v1/shipments/${SHIPMENT}`, {
    headers: { authorization: `Bearer ${COORDINATOR_TOKEN}` },
  });
  assert.equal(response.status, 200);
  return response.json();
}

test("offline receipts survive a power cut and sync, attributed, once online", async () => {
  const profile = join(temp, "anna-profile");
  let phone = await launch(profile);
  try {
    await login(phone.page, "anna");
    await shot(phone.page, "1-shipments");
    // The service worker has cached the app: it will open offline.
    await phone.page.evaluate(() => navigator.serviceWorker.ready);
    await phone.context.setOffline(true);
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await shot(phone.page, "2-shipment");
    for (const serial of ["END-2601201", "END-2601202", "END-2601203"]) {
      await recordReceipt(phone.page, { serial });
      await phone.page.waitForSelector(`#pending[data-pending]`);
    }
    await phone.page.waitForFunction(() => document.querySelector("#pending").dataset.pending === "3");
    await shot(phone.page, "3-recorded-offline");
  } finally {
    await kill(phone);
  }

  phone = await launch(profile);
  try {
    await phone.context.setOffline(true);
    await phone.page.goto(base);
    await phone.page.waitForSelector(`[data-shipment="${SHIPMENT}"]`);
    // The screens render asynchronously (they read the engine and the
    // store): wait for what they should show before counting, or a count
    // taken a moment too early reads as lost records (it did, 1 run in 10).
    await phone.page.waitForFunction(() => document.querySelector("#pending")?.dataset.pending === "3", null, { timeout: 5_000 }).catch(() => {});
    assert.equal(await pending(phone.page), 3, "the three receipts survived the power cut");
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await phone.page.waitForFunction(() => document.querySelectorAll(".history li").length >= 3, null, { timeout: 5_000 }).catch(() => {});
    assert.equal(await phone.page.locator(".history li").count(), 3);
    await phone.context.setOffline(false);
    await phone.page.waitForFunction(() => document.querySelector("#pending").dataset.pending === "0", null, { timeout: 30_000 });
    await shot(phone.page, "4-synced");
  } finally {
    await kill(phone);
  }
  const detail = await serverShipment();
  const serials = detail.receipts.filter((r) => r.recorded_by === "anna").flatMap((r) => r.serials).sort();
  assert.deepEqual(serials, ["END-2601201", "END-2601202", "END-2601203"]);
});

test("two phones record offline on one shipment; after sync both show both and agree with the server", async () => {
  const profile = join(temp, "two-phones");
  const phone = await launch(profile);
  try {
    const first = phone.page;
    const second = await (await phone.browser.newContext({ viewport: PHONE })).newPage();
    await login(first, "anna");
    await login(second, "anna");
    for (const page of [first, second]) {
      await page.context().setOffline(true);
      await page.click(`[data-shipment="${SHIPMENT}"]`);
    }
    // No serial for a serialised MRI: questioned, then saved.
    await recordReceipt(first, { line: "line-1", quantity: "1", warned: true });
    // Three CT scanners where one was expected: two are surplus.
    await recordReceipt(second, { line: "line-2", quantity: "3", condition: "damaged", warned: true });
    for (const page of [first, second]) await page.context().setOffline(false);
    for (const page of [first, second, first]) {
      await page.click("#sync");
      await page.waitForFunction(() => document.querySelector("#pending").dataset.pending === "0");
    }
    const server = await serverShipment();
    for (const page of [first, second]) {
      await page.reload();
      await page.click(`[data-shipment="${SHIPMENT}"]`);
      for (const line of ["line-1", "line-2"]) {
        // Received counts up to what the line expects; the rest is surplus,
        // shown apart, so "3 of 1 received" never reads as success.
        const want = server.summary.lines.find((l) => l.line_id === line);
        const shown = Number(await page.textContent(`[data-line="${line}"] .received`));
        assert.equal(shown, want.received_against_expected, `${line} on a phone matches the server`);
        assert.equal(shown, 1);
        const surplus = page.locator(`[data-line="${line}"] .surplus`);
        if (want.over_received) assert.equal(await surplus.textContent(), `+${want.over_received}`);
        else assert.equal(await surplus.count(), 0);
      }
      assert.equal(server.summary.lines.find((l) => l.line_id === "line-2").over_received, 2);
    }
  } finally {
    await kill(phone);
  }
});

test("after the first visit the app opens and records with the server gone", async () => {
  const own = await startServer(join(temp, "offline.db"));
  const profile = join(temp, "offline-profile");
  let phone = await launch(profile);
  try {
    await phone.page.goto(own.url);
    await phone.page.fill("#login-user", "anna");
    await phone.page.fill("#login-password", "anna-demo-password");
    await phone.page.click("#login-submit");
    await phone.page.waitForSelector(`[data-shipment="${SHIPMENT}"]`);
    await phone.page.evaluate(() => navigator.serviceWorker.ready);
  } finally {
    await kill(phone);
  }
  // No server at all now: only the service worker and IndexedDB remain.
  const stopped = new Promise((resolve) => own.proc.once("exit", resolve));
  own.proc.kill("SIGTERM");
  await stopped;
  phone = await launch(profile);
  try {
    const response = await phone.page.goto(own.url);
    assert.ok(response.fromServiceWorker(), "the page came from the service worker's cache");
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await recordReceipt(phone.page, { line: "line-1", warned: true });
    await phone.page.waitForFunction(() => document.querySelector("#pending").dataset.pending === "1");
    await shot(phone.page, "7-no-server");
  } finally {
    await kill(phone);
  }
});

test("a receipt the model refuses is refused in the form, with the reason", async () => {
  const phone = await launch(join(temp, "refusal"));
  try {
    await login(phone.page, "anna");
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await recordReceipt(phone.page, { quantity: "0" });
    const alert = phone.page.locator("form [role=alert]:visible");
    await alert.waitFor();
    const text = await alert.textContent();
    assert.match(text, /quantity must be between 1/);
    assert.doesNotMatch(text, /receipts\//, "no document path in a person's message");
    assert.equal(await pending(phone.page), 0);
    await shot(phone.page, "5-refused");
  } finally {
    await kill(phone);
  }
});

test("a serial number scanned with the camera lands in the receipt", async () => {
  const phone = await launch(join(temp, "scanner"));
  try {
    // Linux Chromium has no BarcodeDetector; this one "sees" a code in
    // whatever the (synthetic) camera shows, so the app's path from the
    // camera to the form and the saved receipt is what is tested.
    await phone.page.addInitScript(() => {
      globalThis.BarcodeDetector = class {
        async detect(video) {
          return video.videoWidth > 0 ? [{ rawValue: "SCAN-0042" }] : [];
        }
      };
    });
    await login(phone.page, "anna");
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await phone.page.click(`[data-line="line-3"] button.record`);
    await phone.page.click("#receipt-scan");
    await phone.page.waitForFunction(() => document.querySelector("#receipt-serials").value.includes("SCAN-0042"));
    await shot(phone.page, "7-scanning");
    await phone.page.click("#receipt-scan"); // stop the camera
    await phone.page.click("#receipt-save");
    // Not a serial the manifest lists: questioned, then saved as scanned.
    await phone.page.locator("#receipt-warnings [data-warning=serials_not_on_manifest]").waitFor();
    await phone.page.click("#receipt-save");
    await phone.page.waitForSelector("li[data-receipt] >> text=SCAN-0042");
  } finally {
    await kill(phone);
  }
});

test("the Ukrainian UI has every string, readable contrast and finger-sized controls", async () => {
  const en = JSON.parse(readFileSync(join(root, "web", "i18n", "en.json"), "utf8"));
  const uk = JSON.parse(readFileSync(join(root, "web", "i18n", "uk.json"), "utf8"));
  assert.deepEqual(Object.keys(uk).sort(), Object.keys(en).sort());
  // Every key the code asks for exists.
  const code = ["app.js", "index.html"].map((f) => readFileSync(join(root, "web", f), "utf8")).join("\n");
  const used = new Set([...code.matchAll(/(?:t\(|data-i18n=)["'`]([a-z_]+\.[a-z_.]+)["'`]/g)].map((m) => m[1]));
  for (const key of used) assert.ok(key in en, `missing translation key ${key}`);

  const phone = await launch(join(temp, "ukrainian"));
  try {
    await phone.page.goto(base);
    await phone.page.evaluate(() => localStorage.setItem("aidsync.lang", "uk"));
    await login(phone.page, "anna");
    await phone.page.goto(base);
    await phone.page.waitForSelector("[data-shipment]");
    assert.deepEqual(await accessibilityProblems(phone.page), [], "shipment list");
    await phone.page.click("[data-shipment]");
    await phone.page.waitForSelector("button.record");
    assert.deepEqual(await accessibilityProblems(phone.page), [], "shipment screen");
    await phone.page.click("button.record");
    assert.deepEqual(await accessibilityProblems(phone.page), [], "receipt form");
    const text = await phone.page.textContent("body");
    assert.doesNotMatch(text, /\[[a-z_]+\.[a-z_.]+\]/, "a translation key shows on screen");
    assert.match(text, /Записати отримання/);
    await shot(phone.page, "6-ukrainian");
  } finally {
    await kill(phone);
  }
});

test("the engine's JavaScript API refuses bad calls with named errors", async () => {
  const phone = await launch(join(temp, "engine-api"));
  try {
    await phone.page.goto(base);
    const results = await phone.page.evaluate(async () => {
      const { default: init, Engine } = await import("./pkg/aidsync_client_wasm.js");
      await init();
      // A store in memory: the engine only needs the three methods.
      const docs = new Map();
      let meta = null;
      const store = {
        load: async () => ({ meta, docs: [...docs.values()] }),
        putDoc: async (id, bytes) => { docs.set(id, bytes); },
        putMeta: async (bytes) => { meta = bytes; },
      };
      const engine = await Engine.open(store);
      const outcome = async (f) => {
        try {
          await f();
          return "ok";
        } catch (e) {
          return `${e.name}: ${e.message}`;
        }
      };
      const receipt = JSON.stringify({ id: "r1", line_id: "l1", quantity: 1, condition: "good" });
      return {
        identityBefore: engine.identity() ?? null,
        notLoggedIn: await outcome(() => engine.recordReceipt("s1", receipt, Date.now())),
        badIdentity: await outcome(() => engine.setIdentity("{not json")),
        badShipmentId: await outcome(() => engine.shipment("no/such")),
        unknownShipment: await outcome(() => engine.shipment("s1")),
        setIdentity: await outcome(() => engine.setIdentity(JSON.stringify({
          user: "anna", role: "receiver", device: "d1", actor: "00112233445566778899aabbccddeeff",
        }))),
        unknownAfterLogin: await outcome(() => engine.recordReceipt("s1", receipt, Date.now())),
        badReceipt: await outcome(() => engine.recordReceipt("s1", "{}", Date.now())),
        badTime: await outcome(() => engine.recordReceipt("s1", receipt, Number.NaN)),
        badResponse: await outcome(() => engine.applyResponse(new Uint8Array([1, 2, 3]), Date.now())),
        discardUnknown: await outcome(() => engine.discardRefused("s1")),
        pending: engine.pending(),
        shipments: engine.shipments(),
        saved: meta !== null,
      };
    });
    assert.equal(results.identityBefore, null);
    assert.match(results.notLoggedIn, /^NotLoggedIn: /);
    assert.match(results.badIdentity, /^BadInput: identity/);
    assert.match(results.badShipmentId, /^BadInput: shipment id/);
    assert.match(results.unknownShipment, /^UnknownShipment: /);
    assert.equal(results.setIdentity, "ok");
    assert.match(results.unknownAfterLogin, /^UnknownShipment: /);
    assert.match(results.badReceipt, /^BadInput: receipt/);
    assert.match(results.badTime, /^BadInput: not a time/);
    assert.match(results.badResponse, /^BadResponse: /);
    assert.match(results.discardUnknown, /^UnknownShipment: /);
    assert.equal(results.pending, 0);
    assert.equal(results.shipments, "[]");
    assert.ok(results.saved, "the identity was written through the store");
  } finally {
    await kill(phone);
  }
});

test("the engine crosses the network gzip-compressed, precompressed by scripts/build-web", async () => {
  const path = "pkg/aidsync_client_wasm_bg.wasm";
  const raw = readFileSync(join(root, "web", path)).length;
  const response = await fetch(`${base}/${path}`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-encoding"), "gzip");
  const sent = Number(response.headers.get("content-length"));
  // The precompressed file (gzip -9) is sent as is, with its length; the
  // compression layer would stream it chunked, without one.
  assert.ok(sent > 0 && sent < raw / 2, `${sent} bytes sent for a ${raw}-byte wasm`);
  assert.equal((await response.arrayBuffer()).byteLength, raw, "fetch inflates it back to the module");
});

test("a receipt that is probably wrong is questioned before it is saved, and saved once confirmed", async () => {
  const phone = await launch(join(temp, "warnings"));
  try {
    const { page } = phone;
    await login(page, "anna");
    await page.click(`[data-shipment="${SHIPMENT}"]`);
    // Offline, so a sync cannot empty the outbox between the save and the
    // count below: the warnings are the phone's own, they need no server.
    await page.context().setOffline(true);
    const before = await pending(page);
    // Four endoscopes are expected, with listed serials: five units, a typo
    // and only two serials is three mistakes at once.
    await recordReceipt(page, { line: "line-3", quantity: "5", serial: "XYZ-TYPO\nEND-2601204" });
    const box = page.locator("#receipt-warnings");
    await box.waitFor();
    const kinds = await box.locator("[data-warning]").evaluateAll((items) => items.map((i) => i.dataset.warning));
    for (const kind of ["more_than_outstanding", "serials_not_on_manifest", "serial_count_differs"]) {
      assert.ok(kinds.includes(kind), `${kind} in ${kinds}`);
    }
    assert.match(await box.textContent(), /XYZ-TYPO/);
    assert.equal(await pending(page), before, "nothing saved yet");
    await shot(page, "phone-warnings");

    // Saved as it is once confirmed, with what was seen in its note.
    assert.equal(await page.textContent("#receipt-save"), "Save anyway");
    await page.click("#receipt-save");
    await page.waitForSelector(`[data-line="line-3"]`);
    assert.equal(await pending(page), before + 1);
    const notes = await page.locator(".history li").first().textContent();
    assert.match(notes, /Saved despite: .*XYZ-TYPO/);
    // Once shown under the status badge of every shipment page.
    assert.doesNotMatch(await page.textContent("main"), /\bnull\b/);

    // The same serial again: already received, by whom and when.
    const records = await page.locator(".history li").count();
    await recordReceipt(page, { line: "line-3", quantity: "1", serial: "END-2601204" });
    const again = page.locator("#receipt-warnings [data-warning=serials_already_received]");
    await again.waitFor();
    assert.match(await again.textContent(), /already received: END-2601204 \(anna, /);
    await page.click("#receipt-cancel"); // nothing saved
    await page.waitForSelector(".history li");
    assert.equal(await page.locator(".history li").count(), records);
  } finally {
    await kill(phone);
  }
});

test("logging out with records waiting asks first, and offline refuses", async () => {
  const phone = await launch(join(temp, "logout"));
  try {
    const { page } = phone;
    await login(page, "anna");
    await page.click(`[data-shipment="${SHIPMENT}"]`);
    await page.context().setOffline(true);
    // Said at once, calmly (not as a failed sync in warning red).
    await page.waitForSelector("#message.ok >> text=Offline: records are saved on this phone");
    // A wrong item: nothing for the app to question first.
    await recordReceipt(page, { line: "line-3", condition: "wrong_item" });
    await page.waitForFunction(() => document.querySelector("#pending").dataset.pending !== "0");

    // Offline: logging out would lock her out at the loading dock.
    await page.click("#logout");
    await page.waitForSelector("#status >> text=Not logged out");
    assert.equal(await page.locator("#login-user").count(), 0, "still logged in");
    await shot(page, "phone-logout-refused");

    // Online (the server not reached yet, so the record still waits):
    // asked first; "cancel" keeps her in, "OK" logs out.
    await page.route("**/api/v1/sync", (route) => route.abort());
    await page.context().setOffline(false);
    let dismissed = false;
    page.once("dialog", (d) => { dismissed = true; d.dismiss(); });
    await page.click("#logout");
    assert.ok(dismissed, "asked before logging out");
    assert.equal(await page.locator("#login-user").count(), 0, "still logged in after cancel");
    let asked = "";
    page.once("dialog", (d) => { asked = d.message(); d.accept(); });
    await page.click("#logout");
    await page.waitForSelector("#login-user");
    assert.match(asked, /not reached the server/);
    // The login screen shows no sync status (once a stale "1 waiting").
    assert.equal(await page.isVisible("#status"), false);
  } finally {
    await kill(phone);
  }
});

test("over plain http:// on a network address the app says so, and still saves", async () => {
  const phone = await launch(join(temp, "insecure"));
  try {
    const { page } = phone;
    // What Chromium does for http://192.168.x.x: no secure context, no
    // crypto.randomUUID (and no service worker).
    await page.addInitScript(() => {
      Object.defineProperty(globalThis, "isSecureContext", { value: false });
      Object.defineProperty(Crypto.prototype, "randomUUID", { value: undefined });
    });
    await login(page, "anna");
    assert.match(await page.textContent("#insecure"), /https:\/\//);
    await page.click(`[data-shipment="${SHIPMENT}"]`);
    const before = await pending(page);
    await recordReceipt(page, { line: "line-3", condition: "wrong_item" });
    await page.waitForFunction((n) => Number(document.querySelector("#pending").dataset.pending) > n, before);
    await shot(page, "phone-insecure");
  } finally {
    await kill(phone);
  }
});

/** A proxy to `target` that can be told to stop answering while keeping
 *  connections open: "lie-fi", connected with nothing coming back. */
async function lieFiProxy(target) {
  let silent = false;
  const proxy = http.createServer((req, res) => {
    if (silent) return;
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    silence: () => { silent = true; },
    close: () => { proxy.closeAllConnections(); proxy.close(); },
  };
}

test("when the network does not answer, the app opens from its cache within seconds", async () => {
  const lieFi = await lieFiProxy(base);
  const phone = await launch(join(temp, "lie-fi"));
  try {
    const { page } = phone;
    await page.goto(lieFi.url);
    await page.fill("#login-user", "anna");
    await page.fill("#login-password", "anna-demo-password");
    await page.click("#login-submit");
    await page.waitForSelector(`[data-shipment="${SHIPMENT}"]`);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload();
    await page.waitForSelector(`[data-shipment="${SHIPMENT}"]`);

    lieFi.silence();
    const started = Date.now();
    await page.reload({ waitUntil: "commit", timeout: 30_000 });
    await page.waitForSelector(`[data-shipment="${SHIPMENT}"]`, { timeout: 30_000 });
    const seconds = (Date.now() - started) / 1000;
    // The service worker waits 4 s for the network, then answers from its
    // cache (it took 65 s before, the browser's own timeout).
    assert.ok(seconds < 15, `opened after ${seconds} s`);
  } finally {
    await kill(phone);
    lieFi.close();
  }
});

test("the coordinator's review notes reach the phone, and a line says what is wrong with it", async () => {
  const note = "Damage reported to JICA; replacement requested.";
  const response = await fetch(`${base}/api/v1/shipments/${SHIPMENT}/reviews`, {
    method: "POST",
    headers: { authorization: `Bearer ${COORDINATOR_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ id: "rv-phone-test", note, verdict: "has_issues", resolves: [] }),
  });
  assert.equal(response.status, 201, await response.text());
  const phone = await launch(join(temp, "reviews"));
  try {
    const { page } = phone;
    await login(page, "anna");
    // The list is headed by the facility's name, not its id.
    assert.match(await page.textContent("main h2"), /Kharkiv Regional Clinical Hospital/);
    await page.click(`[data-shipment="${SHIPMENT}"]`);
    const review = page.locator(`#reviews [data-review="rv-phone-test"]`);
    await review.waitFor();
    assert.match(await review.textContent(), /Has issues · olena/);
    assert.match(await review.textContent(), /replacement requested/);
    // Earlier tests left a surplus of CT scanners: the line says so.
    const server = await serverShipment();
    const ct = server.summary.lines.find((l) => l.line_id === "line-2");
    if (ct.over_received) {
      assert.match(await page.textContent(`[data-line="line-2"] .problems`), new RegExp(`${ct.over_received} more than expected`));
    }
    assert.doesNotMatch(await page.textContent("main"), /0 × /, "a cancellation never reads as 0 units");
    await shot(page, "phone-reviews");
  } finally {
    await kill(phone);
  }
});

test("the shipment list searches by serial number, reference or item", async () => {
  const phone = await launch(join(temp, "search"));
  try {
    const { page } = phone;
    await login(page, "anna");
    const visible = () => page.locator("[data-shipment]:visible").evaluateAll((cards) => cards.map((c) => c.dataset.shipment));
    const all = await visible();
    assert.ok(all.length > 1, `${all}`);
    // A serial number on a crate: the microscope of the second shipment.
    await page.fill("#shipment-search", "nsm-2602003");
    assert.deepEqual(await visible(), ["jica-2026-002"]);
    await page.fill("#shipment-search", "no such thing");
    assert.deepEqual(await visible(), []);
    assert.ok(await page.isVisible("#search-none"));
    await page.fill("#shipment-search", "");
    assert.deepEqual(await visible(), all);
  } finally {
    await kill(phone);
  }
});

test("a serialised line's expected serial numbers are a checklist to tick", async () => {
  const phone = await launch(join(temp, "checklist"));
  try {
    const { page } = phone;
    await login(page, "anna");
    // The demo's microscopes: eight expected, NSM-2602007 and 8 not yet seen.
    await page.click(`[data-shipment="jica-2026-002"]`);
    await page.click(`[data-line="line-1"] button.record`);
    const boxes = page.locator("#expected-serials input[type=checkbox]");
    const values = await boxes.evaluateAll((all) => all.map((b) => b.value));
    assert.deepEqual(values, ["NSM-2602007", "NSM-2602008"], "only the serials still missing");
    const [first, second] = values;
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    assert.deepEqual((await page.inputValue("#receipt-serials")).split("\n"), [first, second]);
    assert.equal(await page.inputValue("#receipt-quantity"), "2");
    await boxes.nth(0).uncheck();
    assert.equal(await page.inputValue("#receipt-serials"), second);
    assert.equal(await page.inputValue("#receipt-quantity"), "1");
    await shot(page, "phone-checklist");
  } finally {
    await kill(phone);
  }
});

/** A PNG of `text` as a Code 128 barcode, made with zxing-wasm's writer. */
async function barcodePng(text) {
  const modules = join(root, "tests", "browser", "node_modules", "zxing-wasm", "dist");
  const writer = await import(join(modules, "es", "writer", "index.js"));
  const wasmBinary = readFileSync(join(modules, "writer", "zxing_writer.wasm"));
  await writer.prepareZXingModule({ overrides: { wasmBinary }, fireImmediately: true });
  const { image, error } = await writer.writeBarcode(text, { format: "Code128", scale: 4 });
  assert.equal(error, "");
  const path = join(temp, `${text}.png`);
  writeFileSync(path, Buffer.from(await image.arrayBuffer()));
  return path;
}

test("without BarcodeDetector, a photo of a serial plate's barcode lands in the receipt (zxing-wasm)", async () => {
  const png = await barcodePng("SN-PHOTO-0042");
  const phone = await launch(join(temp, "photo-scan"));
  try {
    const { page } = phone;
    // Linux Chromium has no BarcodeDetector: this is the fallback's path.
    assert.equal(await page.evaluate(() => "BarcodeDetector" in globalThis), false);
    await login(page, "anna");
    await page.click(`[data-shipment="${SHIPMENT}"]`);
    await page.click(`[data-line="line-3"] button.record`);
    const loaded = page.waitForResponse((r) => r.url().endsWith("zxing_reader.wasm"));
    await page.setInputFiles("#receipt-photo-scan", png);
    const reader = await loaded;
    assert.equal(reader.status(), 200, "the reader is loaded from this server, when needed");
    // Under a versioned path: browsers may keep it for a year.
    assert.match((await reader.allHeaders())["cache-control"] ?? "", /immutable/);
    await page.waitForFunction(() => document.querySelector("#receipt-serials").value.includes("SN-PHOTO-0042"));
  } finally {
    await kill(phone);
  }
});

test("a photo taken offline syncs after its receipt and resumes its upload after a power cut", async () => {
  const profile = join(temp, "photo-profile");
  let phone = await launch(profile);
  let sha;
  try {
    await login(phone.page, "anna");
    await phone.page.evaluate(() => navigator.serviceWorker.ready);
    await phone.context.setOffline(true);
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await recordReceipt(phone.page, { condition: "damaged", serial: "PHOTO-0001", warned: true });
    await phone.page.waitForSelector("li[data-receipt] >> text=PHOTO-0001");
    // A camera photo's worth of detail (noise does not compress): about a
    // megabyte once the app has shrunk it to 1600 px at JPEG quality 0.7.
    const base64 = await phone.page.evaluate(() => {
      const canvas = document.createElement("canvas");
      canvas.width = 2400;
      canvas.height = 1800;
      const ctx = canvas.getContext("2d");
      const pixels = ctx.createImageData(canvas.width, canvas.height);
      for (let i = 0; i < pixels.data.length; i++) pixels.data[i] = (i * 2654435761) >>> 24;
      ctx.putImageData(pixels, 0, 0);
      return canvas.toDataURL("image/jpeg", 0.95).split(",")[1];
    });
    const entry = phone.page.locator("li[data-receipt]", { hasText: "PHOTO-0001" });
    const [chooser] = await Promise.all([
      phone.page.waitForEvent("filechooser"),
      entry.locator("button.add-photo").click(),
    ]);
    await chooser.setFiles({ name: "crate.jpg", mimeType: "image/jpeg", buffer: Buffer.from(base64, "base64") });
    const attached = entry.locator("li.attachment[data-state=waiting]");
    await attached.waitFor();
    sha = await attached.getAttribute("data-sha");
    await phone.page.waitForFunction(() => document.querySelector("#files-waiting").dataset.waiting === "1");
    await shot(phone.page, "13-photo-offline");

    // Online, but every upload after the third chunk hangs: the records
    // sync all the same, then the power goes.
    let patches = 0;
    await phone.page.route("**/api/v1/uploads/**", (route) => {
      if (route.request().method() === "PATCH" && ++patches > 3) return; // never answered
      return route.continue();
    });
    await phone.context.setOffline(false);
    await phone.page.click("#sync");
    await phone.page.waitForFunction(() => document.querySelector("#pending").dataset.pending === "0", null, { timeout: 30_000 });
    const detail = await serverShipment();
    assert.ok(detail.attachments.some((a) => a.sha256 === sha), "the record reached the server before the bytes");
    const deadline = Date.now() + 30_000;
    while (patches <= 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(patches > 3, "three chunks went through before the upload hung");
  } finally {
    await kill(phone);
  }
  const held = await uploadStatus(sha);
  assert.equal(held.complete, false);
  assert.equal(held.offset, 3 * 128 * 1024, "the server kept the three chunks it acknowledged");

  phone = await launch(profile);
  try {
    // Where each chunk sent after the restart starts (the bodies are
    // Blobs, which the browser does not show the test).
    const offsets = [];
    phone.page.on("request", (request) => {
      if (request.method() === "PATCH") offsets.push(Number(request.headers()["upload-offset"]));
    });
    await phone.page.goto(base);
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await phone.page.click("#sync");
    await phone.page.waitForSelector(`li.attachment[data-sha="${sha}"][data-state=done]`, { timeout: 60_000 });
    const done = await uploadStatus(sha);
    assert.equal(done.complete, true);
    assert.equal(offsets[0], held.offset, "the upload resumed from the server's offset, not from zero");
    assert.ok(offsets.every((o) => o >= held.offset), `offsets ${offsets}`);
    const sent = done.size - offsets[0];
    assert.ok(sent < done.size, `${sent} of ${done.size} bytes sent after the restart`);
    await shot(phone.page, "14-photo-uploaded");
  } finally {
    await kill(phone);
  }
  // The coordinator's dashboard shows the photo's thumbnail beside the receipt.
  const dash = await launch(join(temp, "photo-dashboard"));
  try {
    await dash.page.setViewportSize({ width: 1280, height: 800 });
    await dash.page.goto(`${base}/coordinator/?shipment=${SHIPMENT}`);
    await dash.page.fill("#login-user", "olena");
    await dash.page.fill("#login-password", "olena-demo-password");
    await dash.page.click("#login-submit");
    const thumb = dash.page.locator(`#detail-receipts img[data-sha="${sha}"]`);
    await thumb.waitFor();
    await dash.page.waitForFunction((s) => document.querySelector(`#detail-receipts img[data-sha="${s}"]`)?.naturalWidth === 320, sha);
    await shot(dash.page, "15-dashboard-thumbnail");
  } finally {
    await kill(dash);
  }
});

/** Where anna's upload of `sha` stands (uploads are per uploader). */
async function uploadStatus(sha) {
  const response = await fetch(`${base}/api/v1/uploads/${sha}`, {
    headers: { authorization: "Bearer demo-anna" },
  });
  assert.equal(response.status, 200);
  return response.json();
}

test("a delivery is signed with a finger, with the signer's name and role, and reaches the server", async () => {
  const phone = await launch(join(temp, "signature"));
  try {
    await login(phone.page, "anna");
    await phone.page.click(`[data-shipment="${SHIPMENT}"]`);
    await phone.page.click("#sign-delivery");
    await phone.page.fill("#signer-name", "Ivan Petrenko");
    await phone.page.selectOption("#signer-role", "delivery_person");
    await phone.page.click("#signature-save");
    await phone.page.locator("text=Draw the signature first.").waitFor();
    assert.deepEqual(await accessibilityProblems(phone.page), [], "signature screen");
    const box = await phone.page.locator("#signature-pad").boundingBox();
    await phone.page.mouse.move(box.x + 20, box.y + box.height / 2);
    await phone.page.mouse.down();
    for (let i = 1; i <= 10; i++) {
      await phone.page.mouse.move(box.x + 20 + i * 25, box.y + box.height / 2 + (i % 2 ? -20 : 20));
    }
    await phone.page.mouse.up();
    await shot(phone.page, "16-signature");
    await phone.page.click("#signature-save");
    const signed = phone.page.locator("#files li.attachment", { hasText: "Ivan Petrenko" });
    await signed.waitFor();
    await phone.page.click("#sync");
    await phone.page.locator("#files li.attachment[data-state=done]", { hasText: "Ivan Petrenko" }).waitFor({ timeout: 30_000 });
  } finally {
    await kill(phone);
  }
  const detail = await serverShipment();
  const signature = detail.attachments.find((a) => a.kind === "signature" && a.signer_name === "Ivan Petrenko");
  assert.ok(signature, "the signature is on the server's record");
  assert.equal(signature.signer_role, "Delivery person");
  assert.equal(signature.media_type, "image/png");
  assert.equal((await uploadStatus(signature.sha256)).complete, true);
});
