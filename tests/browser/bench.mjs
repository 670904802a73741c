// Benchmark of the phone app in headless Chromium (a phone-sized window):
// how long the app takes to open with 500 shipments stored on the phone,
// and how long from tapping "Save" to the receipt being durable. Prints one
// JSON line. Needs a built server (cargo build -p aidsync-server) and web
// app (scripts/build-web):
//
//   node tests/browser/bench.mjs [--shipments 500] [--taps 20]

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

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
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const temp = mkdtempSync(join(tmpdir(), "aidsync-bench-"));
const FACILITY = "kharkiv-regional";

function lineMatching(stream, pattern) {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out; saw:\n${seen}`)), 60_000);
    stream.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x) => Math.round(x * 10) / 10;
  return { p50: round(percentile(sorted, 50)), p95: round(percentile(sorted, 95)), max: round(sorted.at(-1)) };
}

const server = spawn(join(root, "target", "debug", "aidsync"), [
  "serve", "--demo", "--bind", "127.0.0.1:0", "--database-url", `sqlite:${join(temp, "bench.db")}`,
  "--web-root", join(root, "web"), "--requests-per-minute-per-token", "0",
], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
server.stdout.setEncoding("utf8");
let browser;
try {
  const base = (await lineMatching(server.stdout, /aidsync: serving (http:\/\/\S+)/))[1];
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

  const proc = spawn(process.env.AIDSYNC_CHROMIUM ?? "/usr/bin/chromium", [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", `--user-data-dir=${join(temp, "profile")}`, "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  proc.stderr.setEncoding("utf8");
  browser = await chromium.connectOverCDP((await lineMatching(proc.stderr, /DevTools listening on (ws:\/\/\S+)/))[1]);
  const page = browser.contexts()[0].pages()[0];
  await page.setViewportSize({ width: 360, height: 640 });
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
  proc.kill("SIGKILL");
} finally {
  await browser?.close().catch(() => {});
  server.kill("SIGTERM");
  rmSync(temp, { recursive: true, force: true });
}
