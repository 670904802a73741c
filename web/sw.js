// The service worker: the app shell is cached on install, so the app opens
// with no network after the first visit. The API is never cached: data
// lives in IndexedDB, written by the engine.
//
// Background Sync: when the browser says the network is back, any open
// app window is asked to sync (the engine runs in the page, which owns the
// store; two engines on one store could overwrite each other's saves).

const CACHE = "aidsync-shell-v1";
const SHELL = [
  "./",
  "index.html",
  "style.css",
  "app.js",
  "aidsync.js",
  "store.js",
  "i18n.js",
  "i18n/en.json",
  "i18n/uk.json",
  "manifest.webmanifest",
  "icon.svg",
  "pkg/aidsync_client_wasm.js",
  "pkg/aidsync_client_wasm_bg.wasm",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Network first for the shell, so a new version arrives when online; the
// cache when offline, and also when the network does not answer within
// NETWORK_WAIT_MS ("lie-fi": connected, nothing comes back), so the app
// opens in seconds, not after the browser gives up a minute later. The
// late answer still refreshes the cache. Never the API.
const NETWORK_WAIT_MS = 4000;
/** After one slow answer, the next requests (the page's scripts, one
 *  import after another) take the cache at once for a while. */
const SLOW_SPELL_MS = 30_000;
let slowUntil = 0;

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/") ||
      // The coordinators' dashboard is an online page of its own: not the
      // phone app's to cache or stand in for.
      url.pathname.startsWith("/coordinator")) {
    return;
  }
  const network = fetch(event.request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(event.request, copy));
    }
    return response;
  });
  event.waitUntil(network.catch(() => {}));
  event.respondWith(answer(event.request, network));
});

async function answer(request, network) {
  if (Date.now() < slowUntil) {
    const hit = await caches.match(request, { ignoreSearch: true });
    if (hit) return hit;
  }
  let timer;
  const slow = new Promise((resolve) => { timer = setTimeout(resolve, NETWORK_WAIT_MS, "slow"); });
  try {
    const first = await Promise.race([network, slow]);
    if (first !== "slow") return first;
    slowUntil = Date.now() + SLOW_SPELL_MS;
    // Slow: the cached copy if there is one, else keep waiting.
    return (await caches.match(request, { ignoreSearch: true })) ?? (await network);
  } catch {
    // Offline (or the network failed): the cache, or the app's page.
    return (await caches.match(request, { ignoreSearch: true })) ??
      (await caches.match("index.html")) ?? Response.error();
  } finally {
    clearTimeout(timer);
  }
}

self.addEventListener("sync", (event) => {
  if (event.tag !== "aidsync-outbox") return;
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then((clients) => {
      for (const client of clients) client.postMessage("aidsync-sync");
    }),
  );
});
