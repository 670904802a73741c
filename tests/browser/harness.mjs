// What the browser tests and the app benchmark share: a real `aidsync serve
// --demo` on a port of its own, and Debian's Chromium as a process of its
// own (so a test can SIGKILL it, a power cut) driven over CDP.

import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const PHONE = { width: 360, height: 640 };
const CHROMIUM = process.env.AIDSYNC_CHROMIUM ?? "/usr/bin/chromium";

/** Resolves with the first match of `pattern` in what `stream` prints. */
export function lineMatching(stream, pattern, what) {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`${what}: timed out; saw:\n${seen}`)), 60_000);
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

/** Starts the debug build of `aidsync serve --demo` over the SQLite file
 *  `db`, on a free port; resolves with the process and its base URL. */
export async function startServer(db, extraArgs = []) {
  const proc = spawn(join(ROOT, "target", "debug", "aidsync"), [
    "serve", "--demo", "--bind", "127.0.0.1:0",
    "--database-url", `sqlite:${db}`,
    "--web-root", join(ROOT, "web"),
    ...extraArgs,
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  proc.stdout.setEncoding("utf8");
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (d) => process.stderr.write(`[server] ${d}`));
  const url = (await lineMatching(proc.stdout, /aidsync: serving (http:\/\/\S+)/, "server start"))[1];
  return { proc, url };
}

/** Chromium on `profile` with a phone-sized page: `{proc, browser, context, page}`. */
export async function launch(profile) {
  const proc = spawn(CHROMIUM, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // A synthetic camera, granted without a prompt, for the barcode scanner.
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  proc.stderr.setEncoding("utf8");
  const endpoint = (await lineMatching(proc.stderr, /DevTools listening on (ws:\/\/\S+)/, "chromium start"))[1];
  const browser = await chromium.connectOverCDP(endpoint);
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize(PHONE);
  return { proc, browser, context, page };
}

/** A power cut: the browser dies without closing anything. */
export async function kill(phone) {
  const exited = new Promise((resolve) => phone.proc.once("exit", resolve));
  phone.proc.kill("SIGKILL");
  await exited;
}
