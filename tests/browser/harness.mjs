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
  ], {
    stdio: ["ignore", "ignore", "pipe"],
    // A process group of its own, so a power cut can take every Chromium
    // process at once (see `kill`).
    detached: true,
  });
  proc.stderr.setEncoding("utf8");
  const endpoint = (await lineMatching(proc.stderr, /DevTools listening on (ws:\/\/\S+)/, "chromium start"))[1];
  const browser = await chromium.connectOverCDP(endpoint);
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize(PHONE);
  return { proc, browser, context, page };
}

/** A power cut: the browser dies without closing anything. Every process
 *  of it at once, as when the battery dies: killing only the main one left
 *  its storage process running for a moment, and a browser started at once
 *  on the same profile could read the database while it still wrote,
 *  showing the phone without its last records (a rare failure of the
 *  power-cut test, 2026-12-06). */
export async function kill(phone) {
  const exited = new Promise((resolve) => {
    if (phone.proc.exitCode !== null || phone.proc.signalCode !== null) resolve();
    else phone.proc.once("exit", resolve);
  });
  try {
    process.kill(-phone.proc.pid, "SIGKILL");
  } catch {
    phone.proc.kill("SIGKILL");
  }
  await exited;
  // The group's other processes die with the signal; wait until none is left.
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-phone.proc.pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A laptop-sized window, for the coordinator dashboard. */
export const LAPTOP = { width: 1280, height: 800 };

/** Text below WCAG AA contrast (4.5:1, 3:1 for large text) and controls
 *  smaller than a fingertip (44 CSS px) on what `page` shows now. A
 *  checkbox or radio button counts by its label, which is what a finger
 *  taps (the label toggles it). */
export async function accessibilityProblems(page) {
  return page.evaluate(() => {
    const rgba = (css) => {
      const [r, g, b, a = 1] = css.match(/[\d.]+/g).map(Number);
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }) => {
      const c = [r, g, b].map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const bg = rgba(getComputedStyle(e).backgroundColor);
        if (bg.a > 0.5) return bg;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const problems = [];
    for (const el of document.querySelectorAll("body *")) {
      const style = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      if (style.visibility === "hidden" || box.width === 0 || box.height === 0) continue;
      const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (ownText) {
        const [l1, l2] = [luminance(rgba(style.color)), luminance(background(el))].sort((a, b) => b - a);
        const ratio = (l1 + 0.05) / (l2 + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) {
          problems.push(`contrast ${ratio.toFixed(2)} on ${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}"`);
        }
      }
      if (!el.matches("button, input, select, textarea")) continue;
      // A finger taps a checkbox's label; a file picker, itself or its label.
      const label = el.labels?.[0]?.getBoundingClientRect().height ?? 0;
      const height = el.matches("input[type=checkbox], input[type=radio]") && el.labels?.[0]
        ? label
        : el.matches("input[type=file]") ? Math.max(label, box.height) : box.height;
      if (height < 44) {
        problems.push(`${Math.round(height)} px tall ${el.tagName.toLowerCase()} "${(el.textContent || el.id).trim().slice(0, 30)}"`);
      }
    }
    return problems;
  });
}

/** Closes the browser the way a person would (CDP Browser.close), so its
 *  helper processes are gone when this resolves and its profile can be
 *  deleted; a SIGKILL after `ms` if it will not go. */
export async function quit(phone, ms = 10_000) {
  const exited = new Promise((resolve) => {
    if (phone.proc.exitCode !== null || phone.proc.signalCode !== null) resolve();
    else phone.proc.once("exit", resolve);
  });
  try {
    const session = await phone.browser.newBrowserCDPSession();
    await session.send("Browser.close").catch(() => {});
  } catch {
    // Already disconnected: the kill below is all there is left to do.
  }
  const timer = setTimeout(() => phone.proc.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(timer);
}
