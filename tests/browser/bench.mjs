// Benchmark of the phone app in headless Chromium (a phone-sized window):
// how long the app takes to open with 500 shipments stored on the phone,
// and how long from tapping "Save" to the receipt being durable. Prints one
// JSON line. Needs a built server (cargo build -p aidsync-server) and web
// app (scripts/build-web):
//
//   node tests/browser/bench.mjs [--shipments 500] [--taps 20]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { kill, launch, startServer } from "./harness.mjs";

const { values: args } = parseArgs({
  options: {
    shipments: { type: "string", default: "500" },
    taps: { type: "string", default: "20" },
    opens: { type: "string", default: "5" },
  },
});
const SHIPMENTS = Number(args.shipments);
const TAPS = Number(args.taps);
const OPENS = Number(args.opens);
const temp = mkdtempSync(join(tmpdir(), "aidsync-bench-"));
const FACILITY = "kharkiv-regional";

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x) => Math.round(x * 10) / 10;
  return { p50: round(percentile(sorted, 50)), p95: round(percentile(sorted, 95)), max: round(sorted.at(-1)) };
}

const { proc: server, url: base } = await startServer(join(temp, "bench.db"), [
  "--requests-per-minute-per-token", "0",
]);
let phone;
try {
  // The demo has 2 shipments to this facility; add the rest.
  for (let n = 2; n < SHIPMENTS; n++) {
    const response = await fetch(`${base}/api/v1/shipments`, {
      method: "POST",
      headers: { authorization: "Bearer demo-olena", "content-type": "application/json" },
      body: JSON.stringify({
        id: `bench-${n}`, donor: "JICA", programme: "Benchmark", reference: `B-${n}`,
        destination_facility: FACILITY, expected_on: "2026-12-01",
        lines: [
          { id: "l1", item: "Portable ultrasound", category: "imaging", unit: "unit", quantity_expected: 4, serials_expected: [] },
          { id: "l2", item: "Ambulance", category: "vehicle", unit: "vehicle", quantity_expected: 2, serials_expected: [] },
        ],
      }),
    });
    if (response.status !== 201) throw new Error(`creating shipment ${n}: ${response.status} ${await response.text()}`);
  }

  phone = await launch(join(temp, "profile"));
  const { page } = phone;
  await page.goto(base);
  await page.fill("#login-user", "anna");
  await page.fill("#login-password", "anna-demo-password");
  await page.click("#login-submit");
  const all = (n) => page.waitForFunction((n) => document.querySelectorAll("[data-shipment]").length === n, n, { timeout: 120_000 });
  await all(SHIPMENTS);

  // Opening: from navigation until every shipment is listed, offline so the
  // figure is the phone's own work.
  await page.context().setOffline(true);
  const opens = [];
  for (let i = 0; i < OPENS; i++) {
    await page.reload();
    await all(SHIPMENTS);
    opens.push(await page.evaluate(() => performance.now()));
  }

  // Tap to saved: from the click on Save until the engine has written the
  // receipt through IndexedDB and the screen says so.
  await page.click('[data-shipment="bench-2"]');
  const taps = [];
  for (let i = 0; i < TAPS; i++) {
    await page.click('[data-line="l1"] button.record');
    await page.fill("#receipt-quantity", "1");
    const started = await page.evaluate(() => {
      window.__saved = new Promise((resolve) => {
        new MutationObserver((_, observer) => {
          if (!document.querySelector("#message").hidden && document.querySelector("#message").classList.contains("ok")) {
            observer.disconnect();
            resolve(performance.now());
          }
        }).observe(document.body, { subtree: true, childList: true, attributes: true });
      });
      return performance.now();
    });
    await page.click("#receipt-save");
    const saved = await page.evaluate(() => window.__saved);
    taps.push(saved - started);
    await page.evaluate(() => { document.querySelector("#message").hidden = true; });
  }
  console.log(JSON.stringify({
    shipments: SHIPMENTS,
    open_ms: summary(opens),
    tap_to_saved_ms: summary(taps),
    pending: Number(await page.getAttribute("#pending", "data-pending")),
  }));
} finally {
  if (phone) await kill(phone);
  server.kill("SIGTERM");
  rmSync(temp, { recursive: true, force: true });
}
