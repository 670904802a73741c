// The coordinator dashboard (web/coordinator/) in headless Chromium against
// a real `aidsync serve --demo`: what a phone syncs shows up on the open
// dashboard within seconds and without a reload (the phone is the real
// phone app in a second browser context), reviews settle discrepancies,
// shipments are created by form and by CSV manifest, reports download,
// and the Ukrainian page is complete, readable and finger-sized.
//
// One server and one browser for the whole file; each test has browser
// contexts of its own. Screenshots go to tests/browser/artifacts/dashboard-*.png.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LAPTOP, PHONE, ROOT as root, accessibilityProblems, launch, quit, startServer } from "./harness.mjs";

const artifacts = join(root, "tests", "browser", "artifacts");
const SHIPMENT = "jica-2026-001"; // the demo's, to kharkiv-regional (anna's), no receipts yet
/** How long a synced receipt may take to appear on the dashboard. */
const LIVE_MS = 5_000;

let server;
let base;
let browser;
const temp = mkdtempSync(join(tmpdir(), "aidsync-dashboard-"));

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ proc: server, url: base } = await startServer(join(temp, "aidsync.db")));
  browser = await launch(join(temp, "profile"));
});

after(async () => {
  if (browser) await quit(browser);
  server?.kill("SIGTERM");
  // Chromium's helper processes may still be writing to the profile for a
  // moment after the browser itself has gone.
  rmSync(temp, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

/** A fresh browser context (its own storage, like another computer). */
async function open(options = {}) {
  const context = await browser.browser.newContext({ viewport: LAPTOP, acceptDownloads: true, ...options });
  const page = await context.newPage();
  // Script errors and console errors (a CSP violation is one), but not
  // the browser's note on each 4xx response the tests provoke on purpose.
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  return { context, page, errors };
}

/** The whole page, laid out at the window's width without a scrollbar. */
async function shot(page, name) {
  const viewport = page.viewportSize();
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: viewport.width, height: Math.max(height, viewport.height) });
  await page.screenshot({ path: join(artifacts, `dashboard-${name}.png`) });
  await page.setViewportSize(viewport);
}

async function loginDashboard(page, user = "olena", path = "/coordinator/") {
  await page.goto(`${base}${path}`);
  await page.fill("#login-user", user);
  await page.fill("#login-password", `${user}-demo-password`);
  await page.click("#login-submit");
  await page.locator("[data-table=shipments]").waitFor();
  await page.locator("#live[data-state=connected]").waitFor();
}

/** The phone app, as a receiver on a phone of their own. */
async function phoneApp(user) {
  const { context, page } = await open({ viewport: PHONE });
  await page.goto(base);
  await page.fill("#login-user", user);
  await page.fill("#login-password", `${user}-demo-password`);
  await page.click("#login-submit");
  await page.click(`[data-shipment="${SHIPMENT}"]`);
  return { context, page };
}

/** Records a receipt on the phone and syncs it; resolves with when Save
 *  was tapped, once the server has acknowledged the receipt (nothing waits
 *  on the phone any more). The app may already have synced it by itself
 *  (Background Sync fires at once when online); the button makes sure. */
async function recordAndSync(phone, { line, quantity = "1", condition = "good", serial = "" }) {
  const saved = await phone.locator("li[data-receipt]").count();
  await phone.click(`[data-line="${line}"] button.record`);
  await phone.fill("#receipt-quantity", quantity);
  await phone.selectOption("#receipt-condition", condition);
  if (serial) await phone.fill("#receipt-serials", serial);
  const tapped = Date.now();
  await phone.click("#receipt-save");
  await phone.waitForFunction((n) => document.querySelectorAll("li[data-receipt]").length === n, saved + 1);
  await phone.click("#sync");
  await phone.waitForFunction(() => document.querySelector("#pending")?.dataset.pending === "0", null, { timeout: 15_000 });
  return tapped;
}

async function api(path) {
  return fetch(`${base}${path}`, { headers: { authorization: "Bearer demo-olena" } });
}

test("a receipt synced from a phone appears on the open dashboard within seconds, without a reload", async (t) => {
  const dash = await open();
  const phone = await phoneApp("anna");
  try {
    const { page } = dash;
    await loginDashboard(page);
    await page.evaluate(() => { window.dashboardMarker = "not reloaded"; });
    const row = page.locator(`[data-table=shipments] tr[data-shipment="${SHIPMENT}"]`);
    assert.equal(await row.getAttribute("data-received"), "0");

    // The detail is open while the phone syncs: the receipt appears in it.
    await page.click(`[data-table=shipments] [data-open="${SHIPMENT}"]`);
    await page.locator("#detail-header").waitFor();
    assert.match(page.url(), new RegExp(`shipment=${SHIPMENT}`));
    let tapped = await recordAndSync(phone.page, { line: "line-3", serial: "END-2601201" });
    const receipt = page.locator("#detail-body tr[data-receipt]", { hasText: "END-2601201" });
    await receipt.waitFor({ timeout: LIVE_MS });
    t.diagnostic(`receipt on the open detail ${Date.now() - tapped} ms after Save on the phone (its save and sync included)`);
    assert.match(await receipt.textContent(), /anna/);
    // The device by the name it was given at login, not an id.
    assert.match(await receipt.textContent(), /anna's phone|anna's device/);
    // Recorded on the phone, and when it reached the server: both shown.
    assert.doesNotMatch(await receipt.textContent(), /not known/);
    assert.equal(await page.locator("#review-form .check").count(), 1, "the review form offers the new receipt");

    // The overview was refreshed underneath: the totals count it.
    await page.click("#detail-back");
    assert.equal(await row.getAttribute("data-received"), "1");
    assert.equal(await row.locator(".badge").getAttribute("data-status"), "partial");

    // With the overview open, a damaged unit shows as an open discrepancy.
    const damagedBefore = Number(await page.getAttribute("[data-figure=damaged]", "data-value"));
    tapped = await recordAndSync(phone.page, { line: "line-1", condition: "damaged", serial: "MRI-2601001" });
    const discrepancy = page.locator(`[data-table=discrepancies] tr[data-shipment="${SHIPMENT}"][data-kind=damaged]`);
    await discrepancy.waitFor({ timeout: LIVE_MS });
    t.diagnostic(`discrepancy on the overview ${Date.now() - tapped} ms after Save on the phone`);
    assert.equal(await discrepancy.getAttribute("data-resolved"), "false");
    assert.equal(Number(await page.getAttribute("[data-figure=damaged]", "data-value")), damagedBefore + 1);
    assert.equal(await row.getAttribute("data-received"), "2");
    // What the live refresh changed is lit up; the rest is not.
    assert.equal(await row.getAttribute("data-changed"), "true");
    assert.equal(await page.locator("[data-table=shipments] tr[data-changed=true]").count(), 1);
    await shot(page, "laptop");
    assert.deepEqual(await accessibilityProblems(page), [], "the overview on a laptop");

    // A review that approves the damaged receipt settles it.
    await page.click(`[data-table=discrepancies] tr[data-kind=damaged][data-shipment="${SHIPMENT}"] [data-open]`);
    await page.locator("#review-form .check", { hasText: "Damaged" }).locator("input").check();
    await page.fill("#review-note", "Damage reported to JICA; replacement requested.");
    await page.selectOption("#review-verdict", "approved");
    await page.click("#review-submit");
    await page.locator("#detail-reviews li", { hasText: "replacement requested" }).waitFor();
    await page.locator("#review-done:not([hidden])").waitFor();
    await shot(page, "detail-laptop");
    assert.deepEqual(await accessibilityProblems(page), [], "a shipment on a laptop");
    await page.click("#detail-back");
    await page.uncheck("#discrepancies-open-only");
    await page.locator(`[data-table=discrepancies] tr[data-shipment="${SHIPMENT}"][data-kind=damaged][data-resolved=true]`)
      .waitFor({ timeout: LIVE_MS });

    assert.equal(await page.evaluate(() => window.dashboardMarker), "not reloaded", "the page never reloaded");
    assert.deepEqual(dash.errors, []);

    // The same dashboard opened on a 360 px phone (the login is kept).
    const small = await dash.context.newPage();
    await small.setViewportSize(PHONE);
    await small.goto(`${base}/coordinator/`);
    await small.locator("[data-table=shipments]").waitFor();
    await small.screenshot({ path: join(artifacts, "dashboard-phone-360x640.png") });
    await shot(small, "phone");
  } finally {
    await dash.context.close();
    await phone.context.close();
  }
});

test("coordinators create a shipment by form and by CSV manifest; a bad row is named and nothing is imported", async () => {
  const dash = await open();
  try {
    const { page } = dash;
    await loginDashboard(page);

    await page.click("#open-create");
    await page.fill("#new-id", "form-2026-001");
    await page.fill("#new-donor", "JICA");
    await page.fill("#new-reference", "JICA/UA/2026/F01");
    await page.selectOption("#new-facility", "izium-central");
    await page.fill("#new-expected", "2026-12-20");
    const line = page.locator("#new-lines fieldset").first();
    await line.locator("input[name=item]").fill("Patient monitor");
    await line.locator("input[name=category]").fill("monitoring");
    await line.locator("input[name=unit]").fill("unit");
    await line.locator("input[name=quantity]").fill("3");
    await line.locator("textarea[name=serials]").fill("PM-1; PM-2; PM-3");
    await page.click("#create-submit");
    await page.locator("#create-done", { hasText: "form-2026-001" }).waitFor();
    await page.locator('[data-table=shipments] tr[data-shipment="form-2026-001"]').waitFor({ timeout: LIVE_MS });
    const created = await (await api("/api/v1/shipments/form-2026-001")).json();
    assert.deepEqual(created.lines[0].serials_expected, ["PM-1", "PM-2", "PM-3"]);

    await page.click("#open-import");
    // The template the page makes is a manifest the server takes.
    const [template] = await Promise.all([page.waitForEvent("download"), page.click("#import-template")]);
    const templateText = readFileSync(await template.path(), "utf8");
    assert.match(templateText, /^\ufeffshipment_id,donor,programme,reference,destination_facility,expected_on,shipment_note,line_id,item,category,unit,quantity_expected,serials_expected,accessories,unit_value\r\n/);

    const header = "shipment_id,donor,programme,reference,destination_facility,expected_on,shipment_note,line_id,item,category,unit,quantity_expected,serials_expected,accessories,unit_value";
    const bad = [
      header,
      "csv-2026-001,JICA,Emergency,JICA/UA/2026/C01,kharkiv-emergency,2026-12-15,,line-1,Ventilator,respiratory,unit,2,VEN-1;VEN-2,\"Patient circuit, adult;Operator manual\",9500.00 EUR",
      "csv-2026-001,JICA,Emergency,JICA/UA/2026/C01,kharkiv-emergency,2026-12-15,,line-2,Infusion pump,infusion,unit,lots,,,",
    ].join("\n");
    await page.setInputFiles("#import-file", { name: "manifest.csv", mimeType: "text/csv", buffer: Buffer.from(bad) });
    await page.click("#import-submit");
    const problem = page.locator("[data-table=import-problems] tr[data-line='3']");
    await problem.waitFor();
    assert.match(await problem.textContent(), /quantity_expected/);
    assert.match(await problem.textContent(), /lots/);
    assert.equal(await page.locator("#import-result [data-outcome=refused]").count(), 1);
    assert.equal((await api("/api/v1/shipments/csv-2026-001")).status, 404, "nothing was imported");
    await shot(page, "import-refused");

    await page.setInputFiles("#import-file", { name: "manifest.csv", mimeType: "text/csv", buffer: Buffer.from(bad.replace(",lots,", ",4,")) });
    await page.click("#import-submit");
    await page.locator('#import-result [data-created="csv-2026-001"]').waitFor();
    assert.match(await page.textContent("#import-result [data-outcome=created]"), /1 shipment\(s\) with 2 line\(s\)/);
    await page.locator('[data-table=shipments] tr[data-shipment="csv-2026-001"]').waitFor({ timeout: LIVE_MS });
    const imported = await (await api("/api/v1/shipments/csv-2026-001")).json();
    const ventilator = imported.lines.find((l) => l.id === "line-1");
    assert.deepEqual(ventilator.accessories, ["Patient circuit, adult", "Operator manual"]);
    assert.equal(ventilator.unit_value, "9500.00 EUR");
    assert.deepEqual(dash.errors, []);
  } finally {
    await dash.context.close();
  }
});

test("the filter lives in the URL and exports download its rows as CSV and XLSX", async () => {
  const dash = await open();
  try {
    const { page } = dash;
    await loginDashboard(page);
    // Filters and exports are folded away, so the totals come first.
    const totalsTop = await page.locator("#totals").evaluate((e) => e.getBoundingClientRect().top);
    assert.ok(totalsTop < 400, `totals start ${totalsTop} px down`);
    await page.click("#filters-summary");
    await page.selectOption("#filter-facility", "kharkiv-regional");
    await page.waitForFunction(() => location.search.includes("facility=kharkiv-regional"));
    await page.waitForFunction(() => document.querySelectorAll("[data-table=shipments] tbody tr").length === 2);

    await page.click("#export > summary");
    const [csv] = await Promise.all([page.waitForEvent("download"), page.click("#export-shipments-csv")]);
    assert.match(csv.suggestedFilename(), /^aidsync-shipments-\d{4}-\d\d-\d\d\.csv$/);
    const text = readFileSync(await csv.path(), "utf8");
    assert.ok(text.startsWith("\ufeffid,"), "a UTF-8 CSV with its header");
    assert.match(text, /jica-2026-001/);
    assert.doesNotMatch(text, /jica-2026-003/, "only the filtered facility's shipments");
    const [xlsx] = await Promise.all([page.waitForEvent("download"), page.click("#export-discrepancies-xlsx")]);
    const zip = readFileSync(await xlsx.path());
    assert.equal(zip.subarray(0, 2).toString("latin1"), "PK", "an XLSX (zip) file");
    assert.equal(await page.getAttribute("#export-status", "data-bytes"), String(zip.length));
    // The filtered shipments' attached files, as one ZIP with its index.
    const [files] = await Promise.all([page.waitForEvent("download"), page.click("#export-attachments-zip")]);
    assert.match(files.suggestedFilename(), /^aidsync-attachments-\d{4}-\d\d-\d\d\.zip$/);
    assert.equal(readFileSync(await files.path()).subarray(0, 2).toString("latin1"), "PK");

    // A colleague opening the link sees the same filter.
    const link = page.url();
    const second = await dash.context.newPage();
    await second.goto(link);
    await second.locator("[data-table=shipments]").waitFor();
    assert.equal(await second.inputValue("#filter-facility"), "kharkiv-regional");
    assert.equal(await second.locator("[data-table=shipments] tbody tr").count(), 2);

    // Search by a serial number someone recorded.
    await page.click("#filter-clear");
    await page.fill("#filter-q", "MRI-2601001");
    await page.waitForFunction(() => location.search.includes("q=MRI-2601001"));
    await page.waitForFunction(() => document.querySelectorAll("[data-table=shipments] tbody tr").length === 1);
    assert.equal(await page.getAttribute("[data-table=shipments] tbody tr", "data-shipment"), "jica-2026-001");
  } finally {
    await dash.context.close();
  }
});

test("the shipment and discrepancy lists show a page at a time; open only hides settled discrepancies", async () => {
  const dash = await open();
  try {
    const { page } = dash;
    await loginDashboard(page, "olena", "/coordinator/?page_size=3");
    const all = (await (await api("/api/v1/shipments")).json()).map((s) => s.id);
    assert.ok(all.length > 6, "enough shipments for two pages and more");
    const rows = page.locator("[data-table=shipments] tbody tr");
    const shown = () => rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.shipment));
    assert.deepEqual(await shown(), all.slice(0, 3));
    assert.equal(await page.textContent("#shipments-count"), `Showing 3 of ${all.length}.`);
    await page.click("#shipments-more");
    await page.waitForFunction(() => document.querySelectorAll("[data-table=shipments] tbody tr").length === 6);
    assert.deepEqual(await shown(), all.slice(0, 6), "the next page, appended");
    // A live refresh fetches as many as are shown, not just the first page.
    const before = await page.getAttribute("#refreshed", "data-at");
    const review = await fetch(`${base}/api/v1/shipments/${all[0]}/reviews`, {
      method: "POST",
      headers: { authorization: "Bearer demo-olena", "content-type": "application/json" },
      body: JSON.stringify({ id: "paging-note", note: "Checked the paging.", verdict: null, resolves: [] }),
    });
    assert.equal(review.status, 201);
    await page.waitForFunction((at) => document.querySelector("#refreshed")?.dataset.at !== at, before, { timeout: LIVE_MS });
    assert.deepEqual(await shown(), all.slice(0, 6), "still six after the live refresh");

    // Open only (the default) hides the demo's settled discrepancy.
    const discrepancies = await (await api("/api/v1/reports/discrepancies")).json();
    const open = discrepancies.filter((d) => !d.resolved).length;
    const listed = page.locator("[data-table=discrepancies] tbody tr");
    // The demo's approved endoscope (its light source came separately).
    const settled = page.locator('[data-table=discrepancies] tr[data-shipment="jica-2026-004"][data-line="line-1"][data-kind=damaged]');
    assert.ok(await page.isChecked("#discrepancies-open-only"));
    assert.equal(await listed.count(), Math.min(3, open));
    assert.equal(await settled.count(), 0);
    await page.uncheck("#discrepancies-open-only");
    // Open ones first: the settled ones come after "Show more".
    assert.ok(discrepancies.length > 3);
    assert.equal(await listed.count(), 3);
    while (await page.locator("#discrepancies-more").count()) await page.click("#discrepancies-more");
    assert.equal(await listed.count(), discrepancies.length);
    assert.equal(await settled.getAttribute("data-resolved"), "true");
    assert.deepEqual(await accessibilityProblems(page), [], "the lists with their Show more buttons");
    await page.check("#discrepancies-open-only");
    assert.equal(await settled.count(), 0);
    assert.deepEqual(dash.errors, []);
  } finally {
    await dash.context.close();
  }
});

test("the Ukrainian dashboard has every string, readable contrast and finger-sized controls", async () => {
  const dir = join(root, "web", "coordinator");
  const en = JSON.parse(readFileSync(join(dir, "i18n", "en.json"), "utf8"));
  const uk = JSON.parse(readFileSync(join(dir, "i18n", "uk.json"), "utf8"));
  assert.deepEqual(Object.keys(uk).sort(), Object.keys(en).sort());
  // Every key the code names exists (those built from data are checked on screen below).
  const code = ["dashboard.js", "index.html"].map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
  const notKeys = ["dashboard.js", "dashboard.css", "p.empty"]; // file names, a selector
  const used = [...code.matchAll(/["'`]([a-z_]+\.[a-z_]+)["'`]/g)].map((m) => m[1]).filter((k) => !notKeys.includes(k));
  assert.ok(used.length > 100, "the key scan finds the dashboard's keys");
  for (const key of used) assert.ok(key in en, `missing translation key ${key}`);

  // Ukrainian because the browser prefers it, not because anyone chose it.
  const dash = await open({ viewport: PHONE, locale: "uk-UA" });
  try {
    const { page } = dash;
    await loginDashboard(page, "olena", "/coordinator/?status=discrepancy&page_size=1");
    const check = async (what) => {
      const text = await page.textContent("body");
      assert.doesNotMatch(text, /\[[a-z_]+\.[a-z_.]+\]/, `a translation key shows on screen (${what})`);
      assert.deepEqual(await accessibilityProblems(page), [], what);
    };
    assert.match(await page.textContent("body"), /Розбіжності/);
    // Unfold what a phone folds away (the filters, the exports).
    const folded = page.locator("details:not([open]) > summary");
    while (await folded.count()) await folded.first().click();
    await check("overview");
    await page.evaluate(() => scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, "dashboard-uk-phone-360x640.png") });
    await shot(page, "uk-phone");
    await page.click("#open-create");
    await check("new shipment form");
    await page.click("#open-import");
    await check("import form");
    await page.locator("[data-table=shipments] [data-open]").first().click();
    await page.locator("#review-form").waitFor();
    await check("shipment detail");
    await shot(page, "uk-detail-phone");
    assert.deepEqual(dash.errors, []);
  } finally {
    await dash.context.close();
  }
});

test("a receiver sees only their facility; an admin is told this is not theirs", async () => {
  const dash = await open();
  try {
    const { page } = dash;
    await loginDashboard(page, "iryna");
    const facilities = await page.locator("[data-table=shipments] tbody tr").evaluateAll((rows) => rows.map((r) => r.textContent));
    assert.ok(facilities.length > 0);
    for (const row of facilities) assert.match(row, /Izium Central City Hospital/);
    assert.equal(await page.locator("#open-create").count(), 0, "receivers do not create shipments");
    await page.click("#logout");
    await page.locator("#login-user").waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("aidsync.coordinator.session")), null);

    await page.fill("#login-user", "admin");
    await page.fill("#login-password", "admin-demo-password");
    await page.click("#login-submit");
    await page.locator("form [role=alert]", { hasText: "manage facilities, accounts and devices" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("aidsync.coordinator.session")), null);
  } finally {
    await dash.context.close();
  }
});

test("a shipment's receipts name the records they cancel or may duplicate by person and time", async () => {
  const dash = await open();
  try {
    const { page } = dash;
    // The demo: petro counted END-2603102 twice; iryna cancelled a count.
    await loginDashboard(page);
    // The chart: seven vehicles where six were expected (goj-2026-101) do
    // not fill the gap of the missing ones; the surplus is shown apart.
    const emergency = page.locator(".chart-row[data-facility=kharkiv-emergency]");
    assert.equal(await emergency.getAttribute("data-surplus"), "1");
    const [received, expected] = await Promise.all(["data-received", "data-expected"].map((a) => emergency.getAttribute(a)));
    assert.ok(Number(received) < Number(expected), `${received} of ${expected}`);
    assert.match(await emergency.textContent(), /\+1 beyond expected/);
    assert.doesNotMatch(await emergency.textContent(), /100 %/);
    const pair = await page.textContent("[data-table=duplicates] tr[data-shipment=jica-2026-003]");
    assert.match(pair, /petro's record of \d.*petro's record of \d/s);
    assert.doesNotMatch(pair, /demo-petro/, "no receipt ids on the overview either");
    await page.click(`[data-table=shipments] [data-open="jica-2026-003"]`);
    await page.locator("#detail-body tr[data-receipt]").first().waitFor();
    const duplicate = await page.textContent("#detail-body");
    assert.match(duplicate, /Same as petro's record of \d/);
    assert.doesNotMatch(duplicate, /demo-petro-\d/, "no ids where a person reads");
    await page.click("#detail-back");
    await page.click(`[data-table=shipments] [data-open="jica-2026-004"]`);
    await page.locator("#detail-body tr[data-receipt]").first().waitFor();
    assert.match(await page.textContent("#detail-body"), /Cancels iryna's record of \d/);
    assert.deepEqual(dash.errors, []);
  } finally {
    await dash.context.close();
  }
});

test("a delivery's papers, a rejected unit with its reason and a unit's commissioning, recorded offline, reach the dashboard, the goods-received note and the asset register", async () => {
  const phone = await phoneApp("anna");
  const dash = await open();
  try {
    const p = phone.page;
    await p.context().setOffline(true);
    // The truck at the gate: its papers and seal.
    await p.click("#delivery-record");
    await p.fill("#delivery-waybill", "ТТН-7781");
    await p.fill("#delivery-transporter", "Нова Пошта Карго");
    await p.fill("#delivery-vehicle", "AX 5521 KC");
    await p.selectOption("#delivery-seal", "broken");
    await p.fill("#delivery-seal-number", "S-9912");
    await p.fill("#delivery-packages-expected", "4");
    await p.fill("#delivery-packages-received", "3");
    await p.fill("#delivery-note", "one crate opened");
    await p.click("#delivery-save");
    await p.waitForSelector("#deliveries li[data-delivery]");
    const deliveryId = await p.getAttribute("#deliveries li[data-delivery]", "data-delivery");

    // The CT scanner arrived damaged and is rejected: the fitting reason is
    // offered as soon as the condition says damaged, and the receipt goes
    // with the truck just recorded.
    await p.click(`[data-line="line-2"] button.record`);
    assert.equal(await p.inputValue("#receipt-delivery"), deliveryId);
    await p.selectOption("#receipt-condition", "damaged");
    await p.waitForFunction(() => document.querySelector("#receipt-reason").value === "damaged_in_transit");
    assert.ok(await p.isVisible("#receipt-reason-hint"), "why a reason is asked for");
    await p.selectOption("#receipt-stage", "rejected");
    await p.fill("#receipt-serials", "CT-2601101");
    await p.fill("#receipt-note", "gantry cracked");
    await p.click("#receipt-save");
    await p.waitForSelector("li[data-receipt] .stage-rejected");
    assert.match(await p.textContent("li[data-receipt]"), /Damaged in transit/);
    // A rejection in good order has no fitting reason: the person must choose.
    await p.click(`[data-line="line-1"] button.record`);
    await p.selectOption("#receipt-stage", "rejected");
    await p.selectOption("#receipt-reason", "");
    await p.click("#receipt-save");
    await p.locator("#receipt-reason-hint:visible").waitFor();
    assert.match(await p.textContent("#receipt-reason-hint"), /Choose a reason/);
    await p.click("#receipt-cancel");
    await shot(p, "phone-delivery");

    // The MRI, still offline: commissioned, then its acceptance test passed.
    const mri = `#units li[data-serial="MRI-2601001"]`;
    for (const [step, fill] of [
      ["commissioned", async () => {}],
      ["acceptance_test", async () => p.selectOption("#unit-result", "passed")],
    ]) {
      await p.click(`${mri} button.unit-step`);
      await p.selectOption("#unit-step", step);
      await fill();
      await p.fill("#unit-on", "2026-12-05");
      await p.click("#unit-save");
      await p.locator(mri).waitFor();
    }
    assert.match(await p.textContent(mri), /acceptance test passed 2026-12-05.*commissioned 2026-12-05/s);
    // A failed test needs a note: refused on the phone, nothing saved.
    await p.click(`${mri} button.unit-step`);
    await p.selectOption("#unit-step", "acceptance_test");
    await p.selectOption("#unit-result", "failed");
    await p.click("#unit-save");
    await p.locator("form [role=alert]:visible").waitFor();
    assert.match(await p.textContent("form [role=alert]"), /failed test needs a note/);
    await p.click("#unit-cancel");

    // The note is the server's: offline, the phone says so.
    await p.click("#deliveries li[data-delivery] button.grn");
    await p.waitForFunction(() => /No network/.test(document.querySelector("#message")?.textContent ?? ""));

    await p.context().setOffline(false);
    await p.click("#sync");
    await p.waitForFunction(() => document.querySelector("#pending")?.dataset.pending === "0", null, { timeout: 15_000 });
    // Synced, the phone downloads the delivery's note itself.
    const [onPhone] = await Promise.all([p.waitForEvent("download"), p.click("#deliveries li[data-delivery] button.grn")]);
    assert.equal(onPhone.suggestedFilename(), `${SHIPMENT}-grn-${deliveryId}.pdf`);
    assert.equal(readFileSync(await onPhone.path()).subarray(0, 5).toString("latin1"), "%PDF-");

    const { page } = dash;
    await loginDashboard(page);
    await page.click(`[data-table=shipments] [data-open="${SHIPMENT}"]`);
    const row = page.locator(`#detail-deliveries tr[data-delivery="${deliveryId}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /ТТН-7781.*AX 5521 KC.*broken S-9912.*3 \/ 4/s);
    assert.match(await page.textContent("#detail-receipts"), /rejected.*damaged in transit/s);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(`#grn-${deliveryId}`)]);
    assert.equal(download.suggestedFilename(), `${SHIPMENT}-grn-${deliveryId}.pdf`);
    const pdf = await download.path();
    assert.equal(readFileSync(pdf).subarray(0, 5).toString("latin1"), "%PDF-");
    let text;
    try {
      text = execFileSync("pdftotext", ["-layout", pdf, "-"], { encoding: "utf8" });
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
      console.log("SKIPPED the note's text: pdftotext is not installed (apt-get install poppler-utils)");
    }
    if (text !== undefined) {
      // Words, not phrases: a table cell wraps within its column.
      for (const expected of ["Акт приймання товару", "ТТН-7781", "Нова Пошта Карго", "CT-2601101",
        "відхилено", "пошкоджено", "перевезення", "gantry cracked"]) {
        assert.ok(text.includes(expected), `${expected} in the note`);
      }
    }
    // The donor's discrepancy report of the shipment, as a spreadsheet.
    const [report] = await Promise.all([page.waitForEvent("download"), page.click("#donor-report-xlsx")]);
    assert.equal(report.suggestedFilename(), `${SHIPMENT}-donor-report.xlsx`);
    assert.equal(readFileSync(await report.path()).subarray(0, 2).toString("latin1"), "PK");
    await shot(page, "grn-deliveries");

    // The MRI on the dashboard: commissioned and accepted; the coordinator
    // hands it over into the hospital's asset register.
    const unitRow = page.locator(`#detail-units tr[data-serial="MRI-2601001"]`);
    assert.match(await unitRow.textContent(), /2026-12-05.*passed · 2026-12-05/s);
    await page.fill("#asset-line-1-MRI-2601001", "KRH-INV-0042");
    await page.click("#handover-line-1-MRI-2601001");
    await page.waitForFunction(() => /KRH-INV-0042/.test(document.querySelector('#detail-units tr[data-serial="MRI-2601001"]')?.textContent ?? ""));
    const register = await (await api(`/api/v1/asset-register.csv?facility=kharkiv-regional`)).text();
    assert.match(register, /^asset_number,handed_over_on,item,/);
    assert.match(register, /KRH-INV-0042,\d{4}-\d{2}-\d{2},MRI system 1\.5T,imaging,MRI-2601001,/);
    await shot(page, "units");
    assert.deepEqual(dash.errors, []);
  } finally {
    await phone.context.close();
    await dash.context.close();
  }
});

test("records saved to a file on a phone without a network are imported on the dashboard, once", async () => {
  const phone = await phoneApp("anna");
  const dash = await open();
  try {
    const p = phone.page;
    await p.context().setOffline(true);
    await recordOffline(p, "line-3", "END-2601204");
    await p.locator("#carry:visible").waitFor();
    const [download] = await Promise.all([p.waitForEvent("download"), p.click("#carry")]);
    assert.match(download.suggestedFilename(), /^aidsync-anna-\d{4}-\d\d-\d\d\.aidsync$/);
    const file = await download.path();

    const { page } = dash;
    await loginDashboard(page);
    await page.click("#open-carried");
    await page.setInputFiles("#carried-file", file);
    await page.click("#carried-submit");
    const done = page.locator("#carried-result [data-outcome=stored]");
    await done.waitFor();
    assert.match(await done.textContent(), /anna's file .*1 shipment\(s\) stored, 0 refused, 1 new change/);
    // The phone, back online, finds its record stored already.
    await p.context().setOffline(false);
    await p.click("#sync");
    await p.waitForFunction(() => document.querySelector("#pending")?.dataset.pending === "0", null, { timeout: 15_000 });
    await page.setInputFiles("#carried-file", file);
    await page.click("#carried-submit");
    await page.waitForFunction(() => /0 new change/.test(document.querySelector("#carried-result")?.textContent ?? ""));
    assert.deepEqual(dash.errors, []);
  } finally {
    await phone.context.close();
    await dash.context.close();
  }
});

/** Records one unit with its `serial` on `line` offline (the fitting
 *  reason offered). */
async function recordOffline(page, line, serial) {
  const saved = await page.locator("li[data-receipt]").count();
  await page.click(`[data-line="${line}"] button.record`);
  await page.fill("#receipt-quantity", "1");
  await page.fill("#receipt-serials", serial);
  await page.click("#receipt-save");
  await page.waitForFunction((n) => document.querySelectorAll("li[data-receipt]").length === n, saved + 1);
}
