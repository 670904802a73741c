// The coordinator dashboard: the merged picture of every shipment the
// account may see, under a filter that lives in the URL (so a link shows a
// colleague the same view): totals, received vs expected per facility,
// discrepancies, possible duplicates, conflicting edits and the shipments;
// a shipment's detail with every receipt and a review form; creating
// shipments by form or CSV manifest; exports. The server's event stream
// says which shipments changed, and what is on screen is fetched again
// without reloading the page.
//
// Every string comes from coordinator/i18n/<lang>.json, like the phone app.
// Data from the server is only ever set as text, never parsed as HTML.

import { Api, ApiError, filterQuery, saveBlob } from "./api.js";
import { LiveStream } from "./live.js";
import { LANGUAGES, language, preferredLanguage, setLanguage, t } from "../i18n.js";

const I18N_BASE = new URL("i18n/", import.meta.url).href;
const FILTER_KEYS = ["q", "facility", "region", "donor", "category", "status", "from", "to"];
const STATUSES = ["awaiting", "partial", "complete", "discrepancy"];
const VERDICTS = ["approved", "has_issues", "rejected"];
const EXPORTS = ["shipments", "lines", "receipts", "discrepancies"];
/** The manifest columns the server reads (service/import.rs), in order. */
const MANIFEST_COLUMNS = [
  "shipment_id", "donor", "programme", "reference", "destination_facility", "expected_on",
  "shipment_note", "line_id", "item", "category", "unit", "quantity_expected", "serials_expected",
  "accessories", "unit_value",
];
/** Rows a table shows before it says "export for the rest": a region's
 *  whole history would make the page slow on a phone. */
const MAX_ROWS = 200;
/** The shipment list and the discrepancy list show this many rows at
 *  first and this many more per "Show more" (a national coordinator may
 *  see 10,000 shipments). `?page_size=N` in the URL overrides it, so the
 *  browser test can page through the demo's few shipments. */
const STANDARD_PAGE_SIZE = 100;
const PAGE_SIZE = pageSize();
/** The most rows one request may ask for (server/src/http/reports.rs). */
const MAX_LIMIT = 100_000;
/** Refreshes start at least this far apart, however many changes stream
 *  in: a busy hour of syncs must not turn into a request storm. A refresh
 *  is eight requests and the server allows a token 600 a minute by
 *  default; this keeps the dashboard under half of that. */
const MIN_REFRESH_GAP_MS = 2_000;
/** Without the live stream, what is shown is refreshed this often. */
const POLL_MS = 30_000;

const api = new Api();
const main = document.getElementById("main");

const state = {
  filter: {},
  /** The shipment whose detail is open, or null for the overview. */
  shipmentId: null,
  facilities: [],
  data: null,
  detail: null,
  refreshedAt: null,
  live: { state: "stopped", detail: {} },
  donors: new Set(),
  categories: new Set(),
  /** Shipments asked for: the first page, plus a page per "Show more".
   *  A refresh or a filter change fetches this many again in one request,
   *  so a live update does not collapse what the person expanded. */
  shipmentRows: PAGE_SIZE,
  /** Discrepancies shown (paged on the page: the report has them all). */
  discrepancyRows: PAGE_SIZE,
  /** The discrepancy list shows open ones only (the API has no such filter). */
  openOnly: true,
};

/** The parts of the page that stay while data refreshes under them. */
let ui = null;
let stream = null;
let pollTimer = null;
let clockTimer = null;

// ---------------------------------------------------------------- helpers

function pageSize() {
  const n = Number(new URLSearchParams(location.search).get("page_size"));
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : STANDARD_PAGE_SIZE;
}

/** A filter's query string with a page of rows: `limit`, `offset`. */
function paged(query, limit, offset = 0) {
  const q = new URLSearchParams(query);
  q.set("limit", String(Math.min(MAX_LIMIT, Math.max(1, limit))));
  if (offset > 0) q.set("offset", String(offset));
  return q.toString();
}

/** Creates an element: h("button", { onclick }, "text", child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replaces `el`'s children, skipping the absent ones (null, false). */
function put(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function locale() {
  return language() === "uk" ? "uk-UA" : "en-GB";
}

function num(n) {
  return new Intl.NumberFormat(locale()).format(n ?? 0);
}

/** Rounded down, so 100 % means everything, never 999 of 1,000. */
function percent(part, whole) {
  return whole > 0 ? Math.floor((100 * part) / whole) : 0;
}

function when(ms) {
  if (ms === null || ms === undefined) return t("time.unknown");
  return new Date(ms).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" });
}

function whenExact(ms) {
  if (ms === null || ms === undefined) return t("time.unknown");
  return new Date(ms).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "medium" });
}

/** A `YYYY-MM-DD` day as the language writes it. */
function day(iso) {
  if (!iso) return "—";
  const date = new Date(`${iso}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString(locale(), { dateStyle: "medium", timeZone: "UTC" });
}

function bytes(n) {
  return n >= 1024 ? t("size.kib", { size: num(Math.round(n / 102.4) / 10) }) : t("size.bytes", { size: num(n) });
}

/** Receipt ids are long random strings; people recognise the start. */
function shortId(id) {
  return id.length > 20 ? `${id.slice(0, 8)}…` : id;
}

/** A fresh random id (the server takes letters, digits, '-' and '_').
 *  getRandomValues works on plain http too, where randomUUID does not. */
function freshId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function facilityName(id) {
  return state.facilities.find((f) => f.id === id)?.name ?? id;
}

function badge(status) {
  return h("span", { class: `badge ${status}`, dataset: { status } }, t(`status.${status}`));
}

function may(action) {
  const role = api.user()?.role;
  return role === "coordinator" && ["create", "review", "import", "handover"].includes(action);
}

function problemText(error) {
  if (error instanceof ApiError) {
    if (error.status === 429) return t("error.throttled", { seconds: error.retryAfter ?? 60 });
    if (error.status === 403) return t("error.forbidden", { reason: error.message });
    return error.message;
  }
  if (error instanceof TypeError) return t("error.network");
  return error?.message ?? String(error);
}

/** A table that turns into labelled cards on a narrow screen.
 *  `columns`: [{ key: translation key, cell: (row) => node|string, num? }]. */
function table(name, columns, rows, { rowAttrs = () => ({}), empty = "table.empty", stack = true, footer = null } = {}) {
  if (!rows.length) return h("p", { class: "empty", dataset: { table: name } }, t(empty));
  // A paged table (with a footer) shows what it was given.
  const shown = footer ? rows : rows.slice(0, MAX_ROWS);
  return h("div", { class: "table-wrap" },
    h("table", { class: stack ? "stack" : "compact", dataset: { table: name } },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, t(c.key))))),
      h("tbody", {}, shown.map((row) => h("tr", rowAttrs(row),
        columns.map((c) => h("td", { class: c.num ? "num" : null, dataset: { label: t(c.key) } }, c.cell(row))))))),
    rows.length > shown.length
      ? h("p", { class: "more" }, t("table.more", { shown: num(shown.length), total: num(rows.length) }))
      : null,
    footer);
}

/** Under a paged list: "Showing N of M" and a button for the next page,
 *  while there is more to show. */
function pager(name, shown, total, onMore) {
  if (shown >= total) return null;
  return h("div", { class: "pager", dataset: { pager: name, shown: String(shown), total: String(total) } },
    h("p", { class: "more", id: `${name}-count` }, t("table.showing", { shown: num(shown), total: num(total) })),
    h("button", {
      type: "button",
      class: "secondary",
      id: `${name}-more`,
      "aria-describedby": `${name}-count`,
      onclick: (event) => onMore(event.currentTarget),
    }, t("table.show_more", { count: num(Math.min(PAGE_SIZE, total - shown)) })));
}

function section(id, titleKey, ...children) {
  return h("section", { id, class: "panel", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, t(titleKey)), ...children);
}

function message(el, text, { ok = false } = {}) {
  el.hidden = !text;
  el.textContent = text ?? "";
  el.classList.toggle("ok", ok);
}

// ---------------------------------------------------------------- the URL

function readUrl() {
  const query = new URLSearchParams(location.search);
  state.filter = Object.fromEntries(FILTER_KEYS.map((k) => [k, query.get(k) ?? ""]));
  state.shipmentId = query.get("shipment") || null;
}

function writeUrl({ push = false } = {}) {
  const query = new URLSearchParams(filterQuery(state.filter));
  if (state.shipmentId) query.set("shipment", state.shipmentId);
  if (PAGE_SIZE !== STANDARD_PAGE_SIZE) query.set("page_size", String(PAGE_SIZE));
  const search = query.toString();
  const url = `${location.pathname}${search ? `?${search}` : ""}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

// ---------------------------------------------------------------- refresh

let refreshTimer = null;
let refreshing = null;
let refreshQueued = false;
let lastRefreshStart = 0;
let detailStale = false;

/** Asks for what is shown to be fetched again: soon, coalesced with
 *  whatever refresh is waiting or running. `detail`: the open shipment's
 *  detail too. `now`: a person asked, so skip the spacing. */
function requestRefresh({ detail = false, now = false } = {}) {
  if (detail) detailStale = true;
  if (refreshing) {
    refreshQueued = true;
    return;
  }
  if (refreshTimer && !now) return;
  clearTimeout(refreshTimer);
  const wait = now ? 0 : Math.max(0, lastRefreshStart + MIN_REFRESH_GAP_MS - Date.now());
  refreshTimer = setTimeout(runRefresh, wait);
}

function runRefresh() {
  refreshTimer = null;
  lastRefreshStart = Date.now();
  const withDetail = detailStale;
  detailStale = false;
  refreshing = refresh({ withDetail })
    .catch((error) => {
      if (!api.user()) return;
      showProblem(t("error.load", { reason: problemText(error) }));
      // Over the rate limit: try again once the server says it may.
      if (error instanceof ApiError && error.status === 429) {
        detailStale = detailStale || withDetail;
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(runRefresh, (error.retryAfter ?? 10) * 1000);
      }
    })
    .finally(() => {
      refreshing = null;
      if (refreshQueued) {
        refreshQueued = false;
        requestRefresh();
      }
    });
}

async function refresh({ withDetail }) {
  if (!api.user() || !ui) return;
  const token = api.session.token;
  const query = filterQuery(state.filter);
  const q = query ? `?${query}` : "";
  const report = (name) => api.get(`/api/v1/reports/${name}${q}`);
  // The first `rows` shipments: as many as were shown, in one request.
  const rows = state.shipmentRows;
  const [shipments, byFacility, byCategory, lines, discrepancies, duplicates, conflicts, units] = await Promise.all([
    api.get(`/api/v1/shipments?${paged(query, rows)}`),
    report("totals-by-facility"),
    report("totals-by-category"),
    report("lines"),
    report("discrepancies"),
    report("duplicates"),
    report("conflicts"),
    unitsSummary(q),
  ]);
  // Logged out (or in as someone else) meanwhile: not theirs to see.
  if (api.session?.token !== token || !ui) return;
  // The filter changed while this was in flight, or "Show more" asked for
  // more shipments than it fetched: its answer is stale.
  if (filterQuery(state.filter) !== query || state.shipmentRows > rows) {
    detailStale = detailStale || withDetail;
    refreshQueued = true;
    return;
  }
  // Every shipment under the filter, counted cheaply: the per-facility
  // totals count them (a short page is the whole list).
  const total = shipments.length < rows ? shipments.length : Math.max(shipments.length, sumOf(byFacility, "shipments"));
  // What a live refresh changed (same filter, a shipment's figures moved or
  // it is new): highlighted for a moment, so the eye finds it.
  const before = state.data && state.dataQuery === query
    ? new Map(state.data.shipments.map((s) => [s.id, JSON.stringify(s)]))
    : null;
  state.changed = new Set(before
    ? shipments.filter((s) => before.get(s.id) !== JSON.stringify(s)).map((s) => s.id)
    : []);
  state.dataQuery = query;
  state.data = { shipments, total, byFacility, byCategory, lines, discrepancies, duplicates, conflicts, units };
  for (const s of shipments) state.donors.add(s.donor);
  for (const c of byCategory) state.categories.add(c.key);
  if (withDetail && state.shipmentId) await loadDetail(state.shipmentId);
  state.refreshedAt = Date.now();
  showProblem(null);
  renderOverview();
  renderSuggestions();
  renderLive();
}

async function loadDetail(id) {
  try {
    const path = `/api/v1/shipments/${encodeURIComponent(id)}`;
    const [detail, units] = await Promise.all([api.get(path), api.get(`${path}/units`)]);
    if (state.shipmentId === id) state.detail = { ...detail, units };
  } catch (error) {
    if (state.shipmentId !== id) return;
    state.detail = { missing: true, id, problem: problemText(error) };
  }
  if (state.shipmentId === id) renderDetail();
}

/** The next page of shipments, appended to those shown. */
async function moreShipments(button) {
  const data = state.data;
  const query = filterQuery(state.filter);
  const offset = data.shipments.length;
  // Set first: a refresh from now on fetches the longer list.
  state.shipmentRows = offset + PAGE_SIZE;
  button.disabled = true;
  let next;
  try {
    next = await api.get(`/api/v1/shipments?${paged(query, PAGE_SIZE, offset)}`);
  } catch (error) {
    if (state.data === data) state.shipmentRows = Math.max(PAGE_SIZE, offset);
    if (api.user()) showProblem(t("error.load", { reason: problemText(error) }));
    button.disabled = false;
    return;
  }
  // A refresh replaced the list meanwhile (with these rows), or the filter
  // changed (its refresh fetches as many): nothing to add here.
  if (state.data !== data || filterQuery(state.filter) !== query || !ui) return;
  // Shipments created since the first page push older ones down a place:
  // skip any already shown (the new ones come with the live refresh).
  const seen = new Set(data.shipments.map((s) => s.id));
  const added = next.filter((s) => !seen.has(s.id));
  data.shipments.push(...added);
  if (next.length < PAGE_SIZE) data.total = data.shipments.length;
  data.total = Math.max(data.total, data.shipments.length);
  for (const s of added) state.donors.add(s.donor);
  renderShipments();
  renderSuggestions();
  focusRow("shipments-body", added[0]?.id);
}

/** After "Show more": the first new row's link, so the keyboard carries on there. */
function focusRow(bodyId, shipmentId) {
  const body = document.getElementById(bodyId);
  const target = (shipmentId && body?.querySelector(`tr[data-shipment="${CSS.escape(shipmentId)}"] [data-open]`))
    ?? body?.querySelector("[id$='-more']");
  target?.focus();
}

function showProblem(text) {
  if (ui) message(ui.problem, text);
}

// ---------------------------------------------------------------- live

function startLive() {
  stream?.stop();
  stream = new LiveStream({
    open: (signal) => api.request("/api/v1/events", { signal }),
    onEvent: (type, data) => {
      if (type === "changed") {
        let ids = [];
        try {
          ids = JSON.parse(data).shipments ?? [];
        } catch {
          // A malformed notice still means "something changed".
        }
        requestRefresh({ detail: !state.shipmentId || ids.includes(state.shipmentId) || !ids.length });
      } else if (type === "refresh") {
        requestRefresh({ detail: true });
      }
    },
    onState: (liveState, detail) => {
      state.live = { state: liveState, detail };
      // Whatever changed while the stream was down is fetched again.
      if (liveState === "connected") requestRefresh({ detail: true });
      renderLive();
    },
  });
  stream.start();
  clearInterval(pollTimer);
  pollTimer = setInterval(() => {
    if (state.live.state !== "connected") requestRefresh({ detail: true });
  }, POLL_MS);
  clearInterval(clockTimer);
  clockTimer = setInterval(renderLive, 15_000);
}

function stopLive() {
  stream?.stop();
  stream = null;
  clearInterval(pollTimer);
  clearInterval(clockTimer);
}

function renderLive() {
  const live = document.getElementById("live");
  const user = api.user();
  live.hidden = !user;
  if (!user) return;
  const { state: s, detail } = state.live;
  live.dataset.state = s;
  document.getElementById("live-text").textContent = s === "waiting"
    ? t("live.waiting", { seconds: Math.max(1, Math.round((detail.retryInMs ?? 0) / 1000)) })
    : t(`live.${s}`);
  const refreshed = document.getElementById("refreshed");
  refreshed.textContent = state.refreshedAt ? t("live.refreshed", { time: whenExact(state.refreshedAt) }) : "";
  if (state.refreshedAt) refreshed.dataset.at = String(state.refreshedAt);
}

// ---------------------------------------------------------------- login

function renderLogin(problem) {
  const user = h("input", { id: "login-user", name: "user", autocomplete: "username", required: true, autocapitalize: "none" });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "message", role: "alert", hidden: !problem }, problem ?? "");
  const submit = h("button", { type: "submit", id: "login-submit" }, t("login.submit"));
  const form = h("form", {
    class: "login panel",
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        const account = await api.login(user.value.trim(), password.value);
        if (account.role === "admin") {
          await api.logout();
          message(error, t("login.admin"));
          return;
        }
        await start();
      } catch (e) {
        message(error, loginProblem(e));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("h2", {}, t("login.heading")),
  h("p", {}, t("login.intro")),
  h("label", { for: "login-user" }, t("login.user")), user,
  h("label", { for: "login-password" }, t("login.password")), password,
  error,
  h("div", { class: "actions" }, submit));
  main.replaceChildren(form);
  renderHeader();
  user.focus();
}

function loginProblem(e) {
  if (e instanceof ApiError) {
    if (e.status === 401) return t("login.failed");
    if (e.status === 429) return t("login.throttled", { seconds: e.retryAfter ?? 60 });
    return e.message;
  }
  if (e instanceof TypeError) return t("error.network");
  return e?.message ?? String(e);
}

function renderHeader() {
  document.title = t("app.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang").textContent = t("lang.switch");
  const user = api.user();
  document.getElementById("logout").hidden = !user;
  const who = document.getElementById("who");
  who.hidden = !user;
  who.textContent = user
    ? t("who", { name: user.name, role: t(`role.${user.role}`), scope: user.facility ? facilityName(user.facility) : (user.region ?? t("scope.all")) })
    : "";
  renderLive();
}

// ---------------------------------------------------------------- the shell

/** Builds the page's lasting parts: filters, tools, the overview's and the
 *  detail's containers. Data renders into them; forms keep what is typed. */
function buildShell() {
  const problem = h("p", { id: "problem", class: "message", role: "alert", hidden: true });
  const filters = buildFilters();
  const tools = buildTools();
  const overview = h("div", { id: "overview" },
    section("totals", "totals.heading", h("div", { id: "totals-figures", class: "figures" })),
    h("div", { class: "columns" },
      section("chart", "chart.heading", h("div", { id: "chart-body" })),
      section("by-category", "by_category.heading", h("div", { id: "by-category-body" }))),
    section("by-facility", "by_facility.heading", h("div", { id: "by-facility-body" })),
    section("units", "units.heading", h("div", { id: "units-body" })),
    section("discrepancies", "discrepancies.heading", openOnlyToggle(), h("div", { id: "discrepancies-body" })),
    h("div", { class: "columns" },
      section("duplicates", "duplicates.heading", h("div", { id: "duplicates-body" })),
      section("conflicts", "conflicts.heading", h("div", { id: "conflicts-body" }))),
    section("shipments", "shipments.heading", h("div", { id: "shipments-body" })));
  const detailBody = h("div", { id: "detail-body" });
  const reviewHost = h("div", { id: "review-host" });
  const detail = h("div", { id: "detail", hidden: true },
    h("button", { type: "button", class: "secondary", id: "detail-back", onclick: closeShipment }, t("detail.back")),
    detailBody, reviewHost);
  main.replaceChildren(problem, filters.element, tools.element, overview, detail);
  ui = { problem, filters, tools, overview, detail, detailBody, reviewHost, review: null };
}

/** "Open only" over the discrepancy list. Built with the shell, so it keeps
 *  its focus while the list refreshes under it. */
function openOnlyToggle() {
  const box = h("input", {
    type: "checkbox",
    id: "discrepancies-open-only",
    checked: state.openOnly,
    onchange: () => {
      state.openOnly = box.checked;
      renderDiscrepancies();
    },
  });
  return h("div", { class: "check toggle" }, box, h("label", { for: box.id }, t("discrepancies.open_only")));
}

function buildFilters() {
  // Search: a serial number, a shipment's id or reference, a donor, an item.
  const q = h("input", { id: "filter-q", name: "q", type: "search", autocomplete: "off", maxlength: "100" });
  const facility = h("select", { id: "filter-facility", name: "facility" });
  const region = h("select", { id: "filter-region", name: "region" });
  const donor = h("input", { id: "filter-donor", name: "donor", list: "donor-list", autocomplete: "off" });
  const category = h("input", { id: "filter-category", name: "category", list: "category-list", autocomplete: "off" });
  const status = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, t("filter.any")),
    STATUSES.map((s) => h("option", { value: s }, t(`status.${s}`))));
  const from = h("input", { id: "filter-from", name: "from", type: "date" });
  const to = h("input", { id: "filter-to", name: "to", type: "date" });
  const controls = { q, facility, region, donor, category, status, from, to };
  const field = (key, control) => h("div", { class: "field" }, h("label", { for: control.id }, t(`filter.${key}`)), control);
  let typing = null;
  const apply = () => {
    clearTimeout(typing);
    for (const key of FILTER_KEYS) state.filter[key] = controls[key].value.trim();
    // A facility outside the chosen region would match nothing.
    if (state.filter.region && state.filter.facility
      && facilityRegion(state.filter.facility) !== state.filter.region) {
      state.filter.facility = "";
    }
    writeUrl();
    fillFacilityOptions();
    requestRefresh({ detail: false, now: true });
  };
  const summary = h("summary", { id: "filters-summary" });
  const form = h("form", {
    id: "filters",
    role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      apply();
    },
    onchange: apply,
    oninput: (event) => {
      if (event.target === q || event.target === donor || event.target === category) {
        clearTimeout(typing);
        typing = setTimeout(apply, 600);
      }
    },
  },
  h("div", { class: "filter-grid" },
    h("div", { class: "field search" }, h("label", { for: q.id }, t("filter.q")), q,
      h("small", { class: "hint" }, t("filter.q_hint"))),
    field("region", region), field("facility", facility), field("donor", donor),
    field("category", category), field("status", status), field("from", from), field("to", to)),
  h("datalist", { id: "donor-list" }),
  h("datalist", { id: "category-list" }),
  h("div", { class: "actions" },
    h("button", { type: "button", id: "filter-clear", class: "secondary", onclick: () => {
      for (const key of FILTER_KEYS) controls[key].value = "";
      apply();
    } }, t("filter.clear"))));
  // Folded under a line saying what is set, so the totals come first;
  // open when the page opens with a filter set (a shared link).
  const active = FILTER_KEYS.some((k) => state.filter?.[k]);
  const element = h("details", { id: "filters-box", class: "filters panel", open: active }, summary, form);
  return { element, controls, summary };
}

function renderFilterSummary() {
  const active = FILTER_KEYS.filter((k) => state.filter[k]).length;
  ui.filters.summary.textContent = active ? t("filter.summary_active", { count: active }) : t("filter.heading");
}

function facilityRegion(id) {
  return state.facilities.find((f) => f.id === id)?.region;
}

/** The selects' options from the facilities, keeping the filter's choice
 *  (even one no longer listed: the URL said so, and the server decides). */
function fillFacilityOptions() {
  const { facility, region } = ui.filters.controls;
  const regions = [...new Set(state.facilities.map((f) => f.region))].sort();
  if (state.filter.region && !regions.includes(state.filter.region)) regions.push(state.filter.region);
  put(region, h("option", { value: "" }, t("filter.any")), regions.map((r) => h("option", { value: r }, r)));
  region.value = state.filter.region;
  const shown = state.facilities
    .filter((f) => !state.filter.region || f.region === state.filter.region)
    .sort((a, b) => a.name.localeCompare(b.name));
  const options = shown.map((f) => h("option", { value: f.id }, f.name));
  if (state.filter.facility && !shown.some((f) => f.id === state.filter.facility)) {
    options.push(h("option", { value: state.filter.facility }, state.filter.facility));
  }
  put(facility, h("option", { value: "" }, t("filter.any")), options);
  facility.value = state.filter.facility;
  for (const key of ["donor", "category", "status", "from", "to"]) ui.filters.controls[key].value = state.filter[key];
  renderFilterSummary();
}

function renderSuggestions() {
  const fill = (id, values) => document.getElementById(id)
    ?.replaceChildren(...[...values].sort().map((v) => h("option", { value: v })));
  fill("donor-list", state.donors);
  fill("category-list", state.categories);
  document.getElementById("category-options")
    ?.replaceChildren(...[...state.categories].sort().map((v) => h("option", { value: v })));
}

// ---------------------------------------------------------------- tools

function buildTools() {
  const exportStatus = h("p", { id: "export-status", class: "message ok", role: "status", hidden: true });
  const exports = h("div", { class: "exports" },
    EXPORTS.map((name) => h("div", { class: "export" },
      h("span", {}, t(`export.${name}`)),
      ["csv", "xlsx"].map((format) => h("button", {
        type: "button",
        class: "secondary",
        id: `export-${name}-${format}`,
        "aria-label": t("export.label", { report: t(`export.${name}`), format: format.toUpperCase() }),
        onclick: (event) => exportReport(name, format, event.currentTarget, exportStatus),
      }, format.toUpperCase())))),
    h("div", { class: "export" },
      h("span", {}, t("export.donor")),
      ["pdf", "xlsx"].map((format) => h("button", {
        type: "button",
        class: "secondary",
        id: `export-donor-${format}`,
        "aria-label": t("export.label", { report: t("export.donor"), format: format.toUpperCase() }),
        onclick: (event) => exportFile(`/api/v1/donor-report.${format}`, `aidsync-donor-report.${format}`, event.currentTarget, exportStatus),
      }, format.toUpperCase()))),
    h("div", { class: "export" },
      h("span", {}, t("export.asset_register")),
      ["csv", "xlsx"].map((format) => h("button", {
        type: "button",
        class: "secondary",
        id: `export-asset-register-${format}`,
        "aria-label": t("export.label", { report: t("export.asset_register"), format: format.toUpperCase() }),
        onclick: (event) => exportFile(`/api/v1/asset-register.${format}`, `aidsync-asset-register.${format}`, event.currentTarget, exportStatus),
      }, format.toUpperCase()))),
    h("div", { class: "export" },
      h("span", {}, t("export.attachments")),
      h("button", {
        type: "button",
        class: "secondary",
        id: "export-attachments-zip",
        "aria-label": t("export.label", { report: t("export.attachments"), format: "ZIP" }),
        onclick: (event) => exportFile("/api/v1/attachments.zip", "aidsync-attachments.zip", event.currentTarget, exportStatus),
      }, "ZIP")));
  const create = h("section", { id: "create", class: "panel", hidden: true });
  const importer = h("section", { id: "import", class: "panel", hidden: true });
  const carried = h("section", { id: "carried", class: "panel", hidden: true });
  const toggle = (panel, build) => () => {
    const opening = panel.hidden;
    create.hidden = true;
    importer.hidden = true;
    carried.hidden = true;
    if (opening) {
      if (!panel.firstChild) build(panel);
      panel.hidden = false;
      panel.querySelector("input, select, textarea")?.focus();
    }
    for (const button of element.querySelectorAll("[aria-controls]")) {
      button.setAttribute("aria-expanded", String(!document.getElementById(button.getAttribute("aria-controls")).hidden));
    }
  };
  const buttons = may("create")
    ? h("div", { class: "actions" },
      h("button", { type: "button", id: "open-create", "aria-controls": "create", "aria-expanded": "false", onclick: toggle(create, buildCreateForm) }, t("create.open")),
      h("button", { type: "button", id: "open-import", "aria-controls": "import", "aria-expanded": "false", onclick: toggle(importer, buildImport) }, t("import.open")),
      h("button", { type: "button", id: "open-carried", "aria-controls": "carried", "aria-expanded": "false", onclick: toggle(carried, buildCarried) }, t("carried.open")))
    : null;
  const element = h("div", { id: "tools" },
    h("details", { id: "export", class: "panel" },
      h("summary", {}, t("export.heading")),
      h("p", { class: "hint" }, t("export.hint")),
      exports, exportStatus),
    buttons, create, importer, carried);
  return { element, create, importer };
}

/** A file made from the shipments the filter selects (their attached files
 *  with an index, the donor's discrepancy report), saved under the name
 *  the server gives it. */
async function exportFile(path, fallback, button, status) {
  button.disabled = true;
  message(status, t("export.working"), { ok: true });
  try {
    const query = filterQuery(state.filter);
    const { blob, filename } = await api.file(`${path}${query ? `?${query}` : ""}`, fallback);
    saveBlob(blob, filename);
    status.dataset.file = filename;
    message(status, t("export.done", { file: filename, size: bytes(blob.size) }), { ok: true });
  } catch (error) {
    message(status, t("export.failed", { reason: problemText(error) }));
  } finally {
    button.disabled = false;
  }
}

async function exportReport(name, format, button, status) {
  button.disabled = true;
  message(status, t("export.working"), { ok: true });
  try {
    const { blob, filename } = await api.download(name, format, state.filter);
    saveBlob(blob, filename);
    status.dataset.file = filename;
    status.dataset.bytes = String(blob.size);
    message(status, t("export.done", { file: filename, size: bytes(blob.size) }), { ok: true });
  } catch (error) {
    message(status, t("export.failed", { reason: problemText(error) }));
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- create

function buildCreateForm(panel) {
  const problem = h("p", { class: "message", role: "alert", hidden: true });
  const done = h("div", { id: "create-done", role: "status" });
  const input = (id, attrs = {}) => h("input", { id, name: id, ...attrs });
  const fields = {
    id: input("new-id", { required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", autocapitalize: "none", spellcheck: "false" }),
    donor: input("new-donor", { required: true, list: "donor-list" }),
    programme: input("new-programme"),
    reference: input("new-reference"),
    facility: h("select", { id: "new-facility", required: true },
      state.facilities.map((f) => h("option", { value: f.id }, f.name))),
    expected: input("new-expected", { type: "date" }),
    note: h("textarea", { id: "new-note", rows: 2 }),
  };
  const lines = h("div", { id: "new-lines" });
  const field = (key, control, hint) => h("div", { class: "field" },
    h("label", { for: control.id }, t(`create.${key}`)), control,
    hint ? h("small", { class: "hint" }, t(hint)) : null);
  const addLine = () => {
    const n = lines.children.length + 1;
    const prefix = `line-${Date.now().toString(36)}-${n}`;
    const control = (key, attrs = {}) => h("input", { id: `${prefix}-${key}`, name: key, ...attrs });
    const parts = {
      id: control("id", { value: `line-${n}`, required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", autocapitalize: "none" }),
      item: control("item", { required: true }),
      category: control("category", { required: true, list: "category-options" }),
      unit: control("unit", { required: true }),
      quantity: control("quantity", { type: "number", min: "1", step: "1", value: "1", required: true, inputmode: "numeric" }),
      serials: h("textarea", { id: `${prefix}-serials`, name: "serials", rows: 2, autocapitalize: "characters" }),
    };
    const fieldset = h("fieldset", { class: "new-line" },
      h("legend", {}, t("create.line", { n })),
      h("div", { class: "filter-grid" },
        Object.entries(parts).map(([key, control]) => h("div", { class: key === "serials" ? "field wide" : "field" },
          h("label", { for: control.id }, t(`create.line_${key}`)), control))),
      h("button", { type: "button", class: "link remove-line", onclick: () => {
        if (lines.children.length > 1) fieldset.remove();
      } }, t("create.remove_line")));
    fieldset.parts = parts;
    lines.append(fieldset);
  };
  addLine();
  const form = h("form", {
    id: "create-form",
    onsubmit: async (event) => {
      event.preventDefault();
      message(problem, null);
      const serials = (text) => text.split(/[\n;,]/).map((s) => s.trim()).filter(Boolean);
      const shipment = {
        id: fields.id.value.trim(),
        donor: fields.donor.value.trim(),
        programme: fields.programme.value.trim(),
        reference: fields.reference.value.trim(),
        destination_facility: fields.facility.value,
        expected_on: fields.expected.value || null,
        note: fields.note.value.trim(),
        lines: [...lines.children].map(({ parts }) => ({
          id: parts.id.value.trim(),
          item: parts.item.value.trim(),
          category: parts.category.value.trim(),
          unit: parts.unit.value.trim(),
          quantity_expected: Number(parts.quantity.value),
          serials_expected: serials(parts.serials.value),
        })),
      };
      try {
        const created = await api.post("/api/v1/shipments", shipment);
        form.reset();
        lines.replaceChildren();
        addLine();
        done.replaceChildren(h("p", { class: "message ok" }, t("create.done", { id: created.id }), " ",
          h("button", { type: "button", class: "link", onclick: () => openShipment(created.id) }, t("create.view"))));
        requestRefresh({ now: true });
      } catch (error) {
        message(problem, t("create.failed", { reason: problemText(error) }));
      }
    },
  },
  h("div", { class: "filter-grid" },
    field("id", fields.id, "create.id_hint"), field("donor", fields.donor), field("programme", fields.programme),
    field("reference", fields.reference), field("facility", fields.facility), field("expected_on", fields.expected)),
  field("note", fields.note),
  h("h3", {}, t("create.lines")),
  h("p", { class: "hint" }, t("create.serials_hint")),
  lines,
  h("datalist", { id: "category-options" }),
  h("div", { class: "actions" },
    h("button", { type: "button", class: "secondary", id: "add-line", onclick: addLine }, t("create.add_line")),
    h("button", { type: "submit", id: "create-submit" }, t("create.submit"))),
  problem);
  panel.replaceChildren(h("h2", {}, t("create.heading")), form, done);
  renderSuggestions();
}

// ---------------------------------------------------------------- import

function templateCsv() {
  const example = {
    shipment_id: "example-2026-001",
    donor: "JICA",
    programme: "Emergency medical equipment",
    reference: "JICA/UA/2026/EX1",
    destination_facility: state.facilities[0]?.id ?? "facility-id",
    expected_on: "2026-12-31",
    shipment_note: "",
    line_id: "line-1",
    item: "Portable ultrasound machine",
    category: "imaging",
    unit: "unit",
    quantity_expected: "2",
    serials_expected: "PUS-0001;PUS-0002",
    accessories: "Linear probe;Charger;Operator manual",
    unit_value: "18000.00 EUR",
  };
  const cell = (v) => (/[",\n;]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  // With a byte-order mark, spreadsheet programs open it as UTF-8.
  return `\ufeff${MANIFEST_COLUMNS.join(",")}\r\n${MANIFEST_COLUMNS.map((c) => cell(example[c])).join(",")}\r\n`;
}

/** Uploading a phone's hand-carried file: the server checks it as that
 *  phone's own sync and says what it stored. */
function buildCarried(panel) {
  const file = h("input", { id: "carried-file", type: "file", accept: ".aidsync,application/octet-stream", required: true });
  const result = h("div", { id: "carried-result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "carried-submit" }, t("carried.submit"));
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const chosen = file.files?.[0];
      if (!chosen) return;
      submit.disabled = true;
      result.replaceChildren(h("p", {}, t("import.working")));
      try {
        const report = await api.importCarried(chosen);
        result.replaceChildren(
          h("p", { class: report.refused ? "message" : "message ok", dataset: { outcome: report.refused ? "partly" : "stored" } },
            t("carried.done", {
              user: report.user, when: whenExact(report.created_at),
              accepted: num(report.accepted), refused: num(report.refused), changes: num(report.new_changes),
            })),
          h("ul", {}, report.documents.map((d) => h("li", { dataset: { shipment: d.id, result: d.result } },
            d.id, ": ", d.result === "accepted" ? t("carried.accepted", { changes: num(d.new) }) : (d.reason ?? d.result)))));
        form.reset();
        requestRefresh({ now: true });
      } catch (error) {
        result.replaceChildren(h("p", { class: "message", role: "alert", dataset: { outcome: "refused" } },
          t("carried.failed", { reason: problemText(error) })));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("p", { class: "hint" }, t("carried.hint")),
  h("label", { for: "carried-file" }, t("carried.file")), file,
  h("div", { class: "actions" }, submit));
  panel.replaceChildren(h("h2", {}, t("carried.heading")), form, result);
}

function buildImport(panel) {
  const file = h("input", { id: "import-file", type: "file", accept: ".csv,text/csv", required: true });
  const result = h("div", { id: "import-result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "import-submit" }, t("import.submit"));
  const form = h("form", {
    id: "import-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const chosen = file.files?.[0];
      if (!chosen) return;
      submit.disabled = true;
      result.replaceChildren(h("p", {}, t("import.working")));
      try {
        const imported = await api.importManifest(await chosen.text());
        result.replaceChildren(
          h("p", { class: "message ok", dataset: { outcome: "created" } },
            t("import.done", { shipments: num(imported.created.length), lines: num(imported.lines) })),
          h("ul", { class: "created" }, imported.created.map((id) => h("li", { dataset: { created: id } },
            h("button", { type: "button", class: "link", onclick: () => openShipment(id) }, id)))));
        form.reset();
        requestRefresh({ now: true });
      } catch (error) {
        const rows = error instanceof ApiError ? error.rows : [];
        put(result,
          h("p", { class: "message", role: "alert", dataset: { outcome: "refused" } },
            t("import.failed", { reason: problemText(error) })),
          rows.length
            ? table("import-problems", [
              { key: "import.line", cell: (r) => String(r.line), num: true },
              { key: "import.column", cell: (r) => r.column ?? "—" },
              { key: "import.reason", cell: (r) => r.reason },
            ], rows, { rowAttrs: (r) => ({ dataset: { line: String(r.line) } }) })
            : null);
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("p", { class: "hint" }, t("import.hint", { columns: MANIFEST_COLUMNS.join(", ") })),
  h("label", { for: "import-file" }, t("import.file")), file,
  h("div", { class: "actions" },
    h("button", { type: "button", class: "secondary", id: "import-template", onclick: () => {
      saveBlob(new Blob([templateCsv()], { type: "text/csv;charset=utf-8" }), "aidsync-manifest-template.csv");
    } }, t("import.template")),
    submit));
  panel.replaceChildren(h("h2", {}, t("import.heading")), form, result);
}

// ---------------------------------------------------------------- overview

function sumOf(rows, key) {
  return rows.reduce((total, r) => total + (r[key] ?? 0), 0);
}

/** A line as its item and id (from the lines report), or its id. */
function lineLabel(shipment, line) {
  if (!state.data.items) state.data.items = new Map(state.data.lines.map((l) => [`${l.shipment_id}/${l.line_id}`, l.item]));
  const item = state.data.items.get(`${shipment}/${line}`);
  return item ? h("span", {}, item, h("small", { class: "id" }, ` ${line}`)) : line;
}

function shipmentButton(id) {
  return h("button", { type: "button", class: "link open", dataset: { open: id }, onclick: () => openShipment(id) }, id);
}

function renderOverview() {
  if (!ui || !state.data) return;
  const { total, byFacility, byCategory, discrepancies, duplicates, conflicts } = state.data;
  // A live refresh rebuilds the lists: keep the focus on what had it
  // (a "Show more" button, the toggle) if it is there again.
  const focused = ui.overview.contains(document.activeElement) ? document.activeElement.id : "";

  // Totals over every line that matches (the category filter counts only
  // its own lines, so these agree with the per-category table).
  const sum = sumOf;
  const figure = (key, value, extra) => h("div", { class: `figure ${key}`, dataset: { figure: key, value: String(value) } },
    h("strong", {}, num(value)), h("span", {}, t(`totals.${key}`)), extra ? h("small", {}, extra) : null);
  const expected = sum(byCategory, "expected");
  const received = sum(byCategory, "received");
  const open = discrepancies.filter((d) => !d.resolved).length;
  document.getElementById("totals-figures").replaceChildren(
    figure("shipments", total),
    figure("expected", expected),
    figure("received", received, t("totals.percent", { percent: percent(received, expected) })),
    figure("damaged", sum(byCategory, "damaged")),
    figure("outstanding", sum(byCategory, "outstanding")),
    // Apart from "received", which counts each line only up to what it
    // expects: surplus on one line never hides what another lacks.
    ...["surplus", "wrong_item"].filter((key) => sum(byCategory, key) > 0).map((key) => figure(key, sum(byCategory, key))),
    figure("open_discrepancies", open));

  document.getElementById("chart-body").replaceChildren(chart(byFacility));

  const totalsColumns = (first) => [
    first,
    { key: "totals.shipments", cell: (r) => num(r.shipments), num: true },
    { key: "totals.expected", cell: (r) => num(r.expected), num: true },
    { key: "totals.received", cell: (r) => num(r.received), num: true },
    { key: "totals.damaged", cell: (r) => num(r.damaged), num: true },
    { key: "totals.outstanding", cell: (r) => num(r.outstanding), num: true },
    { key: "totals.surplus", cell: (r) => num(r.surplus), num: true },
    { key: "totals.wrong_item", cell: (r) => num(r.wrong_item), num: true },
  ];
  document.getElementById("by-category-body").replaceChildren(table("by-category",
    totalsColumns({ key: "totals.category", cell: (r) => r.key }), byCategory,
    { stack: false, rowAttrs: (r) => ({ dataset: { category: r.key } }) }));
  document.getElementById("by-facility-body").replaceChildren(table("by-facility",
    totalsColumns({ key: "totals.facility", cell: (r) => facilityName(r.key) }), byFacility,
    { stack: false, rowAttrs: (r) => ({ dataset: { facility: r.key } }) }));

  renderUnitsOverview();
  renderDiscrepancies();

  document.getElementById("duplicates-body").replaceChildren(table("duplicates", [
    { key: "duplicate.shipment", cell: (d) => shipmentButton(d.shipment_id) },
    { key: "duplicate.line", cell: (d) => lineLabel(d.shipment_id, d.line_id) },
    { key: "duplicate.receipts", cell: (d) => h("span", {},
      h("span", { title: d.first }, receiptWho({ recorded_by: d.first_recorded_by, recorded_at: d.first_recorded_at })),
      h("br"),
      h("span", { title: d.second }, receiptWho({ recorded_by: d.second_recorded_by, recorded_at: d.second_recorded_at }))) },
    { key: "duplicate.reason", cell: (d) => t(`reason.${d.reason}`) },
    { key: "duplicate.serials", cell: (d) => d.serials.join(", ") || "—" },
  ], duplicates, { empty: "duplicates.empty", rowAttrs: (d) => ({ dataset: { shipment: d.shipment_id } }) }));

  document.getElementById("conflicts-body").replaceChildren(table("conflicts", [
    { key: "conflict.shipment", cell: (c) => shipmentButton(c.shipment_id) },
    { key: "conflict.field", cell: (c) => h("code", {}, c.path) },
    { key: "conflict.values", cell: (c) => conflictValues(c.values) },
  ], conflicts, { empty: "conflicts.empty", rowAttrs: (c) => ({ dataset: { shipment: c.shipment_id } }) }));

  renderShipments();
  if (focused && !ui.overview.contains(document.activeElement)) document.getElementById(focused)?.focus({ preventScroll: true });
}

/** How often the unit figures are read again while the filter stays the
 *  same: the server reads them from every document the filter selects
 *  (not from the projections), so not on every phone's sync. */
const UNITS_REFRESH_MS = 60_000;
let unitsCache = { query: null, at: 0, value: null };

/** The unit figures for the filter `q`: fresh when the filter changed or a
 *  minute has passed, else the last ones. A filter over more shipments
 *  than the server reads at once (413) shows none. */
async function unitsSummary(q) {
  // Per login too: another person's figures are never shown from the cache.
  const query = `${api.session?.token}${q}`;
  if (unitsCache.query === query && Date.now() - unitsCache.at < UNITS_REFRESH_MS) return unitsCache.value;
  const value = await api.get(`/api/v1/units${q}`).catch(() => null);
  unitsCache = { query, at: Date.now(), value };
  return value;
}

/** The counts every unit's record adds up to. */
const UNIT_COUNTS = ["units", "received", "installed", "commissioned", "accepted", "functioning", "not_functioning", "handed_over", "in_conflict", "warranty_ends_soon"];

/** Serialised units after receipt, per facility, and the warranties
 *  ending within 90 days. */
function renderUnitsOverview() {
  const body = document.getElementById("units-body");
  const units = state.data.units;
  if (!units) {
    body.replaceChildren(h("p", { class: "empty" }, t("units.unavailable")));
    return;
  }
  const counts = (key) => ({ key: `units.${key}`, cell: (r) => num(r.counts[key]), num: true });
  body.replaceChildren(
    table("units-by-facility", [
      { key: "totals.facility", cell: (r) => r.facility },
      ...UNIT_COUNTS.map(counts),
    ], units.facilities, { stack: false, empty: "units.none", rowAttrs: (r) => ({ dataset: { facility: r.facility_id } }) }),
    h("h3", {}, t("units.warranties_heading")),
    table("warranties-ending", [
      { key: "units.ends_on", cell: (w) => w.ends_on },
      { key: "units.serial", cell: (w) => h("span", { class: "stacked" }, w.serial, h("small", {}, w.item)) },
      { key: "units.facility", cell: (w) => facilityName(w.facility_id) },
      { key: "units.service_agent", cell: (w) => w.service_agent || "—" },
      { key: "units.shipment", cell: (w) => shipmentButton(w.shipment_id) },
    ], units.warranties_ending, { empty: "units.no_warranties_ending", rowAttrs: (w) => ({ dataset: { serial: w.serial } }) }));
}

/** The current value of a unit's step in a few words; every value, marked,
 *  when people recorded it differently at the same time. */
function stepText(unit, kind) {
  const current = unit.steps[kind]?.current ?? [];
  if (!current.length) return "—";
  const text = (e) => {
    switch (e.step) {
      case "installed": return `${e.on} · ${e.installer}`;
      case "commissioned": return e.on;
      case "acceptance_test": return `${t(`test.${e.result}`)} · ${e.on}`;
      case "warranty": return `${e.starts_on} – ${e.ends_on}${e.service_agent ? ` · ${e.service_agent}` : ""}`;
      case "location": return [e.department, e.room, e.custodian].filter(Boolean).join(" · ");
      case "status": return t(`unit_status.${e.status}`) + (e.note ? `: ${e.note}` : "");
      case "training": return `${num(e.people)} · ${e.on} · ${e.trainer}`;
      case "checklist": return e.checked.join(", ") || "—";
      case "handed_over": return `${e.asset_number} · ${e.on}`;
      default: return e.step;
    }
  };
  if (current.length === 1) return text(current[0]);
  return h("span", { class: "stacked conflict", dataset: { conflict: kind } },
    h("strong", {}, t("units.conflict")),
    ...current.map((e) => h("small", {}, `${text(e)} (${e.recorded_by})`)));
}

/** The hand-over cell: the asset number once handed over; for an accepted
 *  unit, to a coordinator, a small form to hand it over. */
function handOverCell(s, unit) {
  if (unit.steps.handed_over?.current?.length) return stepText(unit, "handed_over");
  // As the server judges it: the latest current acceptance test.
  const test = unit.steps.acceptance_test?.current?.[0];
  const accepted = test?.result === "passed" || test?.result === "not_applicable";
  if (!accepted || !may("handover")) return "—";
  const key = `${unit.line_id}-${unit.serial}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const asset = h("input", { id: `asset-${key}`, required: true, placeholder: t("units.asset_number"), "aria-label": t("units.asset_number"), size: 12 });
  // Today where the coordinator is, not in UTC.
  const today = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  const date = h("input", { id: `handover-on-${key}`, type: "date", required: true, value: today, "aria-label": t("units.handed_over_on") });
  const submit = h("button", { type: "submit", class: "secondary", id: `handover-${key}` }, t("units.hand_over"));
  return h("form", {
    class: "handover",
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        const units = await api.post(`/api/v1/shipments/${encodeURIComponent(s.id)}/units`, {
          id: freshId(), line_id: unit.line_id, serial: unit.serial,
          step: "handed_over", on: date.value, asset_number: asset.value.trim(), note: "",
        });
        if (state.shipmentId === s.id) {
          state.detail = { ...state.detail, units };
          renderDetail();
        }
        unitsCache.at = 0;
        requestRefresh({ now: true });
      } catch (error) {
        showProblem(t("units.hand_over_failed", { reason: problemText(error) }));
        submit.disabled = false;
      }
    },
  }, asset, date, submit);
}

/** A shipment's serialised units: how each arrived and every step since. */
function unitsSection(s) {
  const view = s.units;
  if (!view) return null;
  const c = view.counts;
  return section("detail-units", "units.detail_heading",
    h("p", { id: "units-counts" }, t("units.summary", {
      units: num(c.units), installed: num(c.installed), accepted: num(c.accepted),
      functioning: num(c.functioning), handed_over: num(c.handed_over),
    })),
    table("detail-units", [
      { key: "units.serial", cell: (u) => h("span", { class: "stacked" }, u.serial, h("small", {}, u.item)) },
      { key: "units.arrived", cell: (u) => u.received
        ? [t(`condition.${u.received.condition}`), u.received.stage === "provisional" ? null : t(`stage.${u.received.stage}`)].filter(Boolean).join(" · ")
        : t("units.not_received") },
      { key: "units.installed", cell: (u) => stepText(u, "installed") },
      { key: "units.commissioned", cell: (u) => stepText(u, "commissioned") },
      { key: "units.acceptance", cell: (u) => stepText(u, "acceptance_test") },
      { key: "units.status", cell: (u) => stepText(u, "status") },
      { key: "units.location", cell: (u) => stepText(u, "location") },
      { key: "units.warranty", cell: (u) => stepText(u, "warranty") },
      { key: "units.handed_over", cell: (u) => handOverCell(s, u) },
    ], view.units, { empty: "units.none_serialised", rowAttrs: (u) => ({ dataset: { serial: u.serial, line: u.line_id } }) }));
}

/** The discrepancy list: open first, open only unless the toggle is off,
 *  the first `discrepancyRows` of them. */
function renderDiscrepancies() {
  if (!ui || !state.data) return;
  const all = [...state.data.discrepancies].sort((a, b) => Number(a.resolved) - Number(b.resolved));
  const rows = state.openOnly ? all.filter((d) => !d.resolved) : all;
  const shown = rows.slice(0, state.discrepancyRows);
  document.getElementById("discrepancies-body").replaceChildren(table("discrepancies", [
    { key: "discrepancy.state", cell: (d) => h("span", { class: `badge ${d.resolved ? "resolved" : "open"}` }, t(d.resolved ? "discrepancy.resolved" : "discrepancy.open")) },
    { key: "discrepancy.kind", cell: (d) => t(`kind.${d.kind}`) },
    { key: "discrepancy.shipment", cell: (d) => shipmentButton(d.shipment_id) },
    { key: "discrepancy.line", cell: (d) => lineLabel(d.shipment_id, d.line_id) },
    { key: "discrepancy.quantity", cell: (d) => num(d.quantity), num: true },
    { key: "discrepancy.serials", cell: (d) => d.serials.join(", ") || "—" },
  ], shown, {
    empty: state.openOnly && all.length ? "discrepancies.none_open" : "discrepancies.empty",
    rowAttrs: (d) => ({ class: d.resolved ? "resolved" : null, dataset: { shipment: d.shipment_id, kind: d.kind, line: d.line_id, resolved: String(d.resolved) } }),
    footer: pager("discrepancies", shown.length, rows.length, () => {
      state.discrepancyRows = shown.length + PAGE_SIZE;
      renderDiscrepancies();
      // The first new row's link, so the keyboard carries on there.
      const added = document.querySelectorAll("[data-table=discrepancies] tbody tr")[shown.length];
      (added?.querySelector("[data-open]") ?? document.getElementById("discrepancies-more"))?.focus();
    }),
  }));
}

/** The shipments fetched so far (newest first), and "Show more" for the next page. */
function renderShipments() {
  if (!ui || !state.data) return;
  const { shipments, total } = state.data;
  document.getElementById("shipments-body").replaceChildren(table("shipments", [
    { key: "shipment.shipment", cell: (s) => h("span", { class: "stacked" }, shipmentButton(s.id), h("small", {}, `${s.donor} · ${s.reference || "—"}`)) },
    { key: "shipment.facility", cell: (s) => facilityName(s.facility_id) },
    { key: "shipment.expected_on", cell: (s) => day(s.expected_on) },
    { key: "shipment.status", cell: (s) => badge(s.status) },
    { key: "shipment.received", cell: (s) => h("span", { class: "received" }, t("shipment.of", { received: num(s.received), expected: num(s.expected) })), num: true },
    { key: "shipment.damaged", cell: (s) => num(s.damaged), num: true },
    { key: "shipment.outstanding", cell: (s) => num(s.outstanding), num: true },
    { key: "shipment.issues", cell: (s) => issues(s) },
    { key: "shipment.last_receipt", cell: (s) => (s.last_receipt_at ? when(s.last_receipt_at) : "—") },
  ], shipments, {
    empty: "shipments.empty",
    rowAttrs: (s) => ({
      class: state.changed?.has(s.id) ? "changed" : null,
      dataset: { shipment: s.id, received: String(s.received), receipts: String(s.receipts), changed: String(Boolean(state.changed?.has(s.id))) },
    }),
    footer: pager("shipments", shipments.length, total, moreShipments),
  }));
}

function issues(s) {
  const parts = [];
  if (s.open_discrepancies) parts.push(t("shipment.open_discrepancies", { count: num(s.open_discrepancies) }));
  if (s.duplicates) parts.push(t("shipment.duplicates", { count: num(s.duplicates) }));
  if (s.conflicts) parts.push(t("shipment.conflicts", { count: num(s.conflicts) }));
  return parts.length ? parts.join(" · ") : "—";
}

function conflictValues(values) {
  // The first value is the one the document shows.
  return h("ul", { class: "plain" }, values.map((v, i) => {
    const text = typeof v === "string" ? v : v.value;
    return h("li", {}, text === "" ? t("conflict.empty_value") : text, i === 0 ? h("small", {}, ` (${t("conflict.kept")})`) : null);
  }));
}

/** Received against expected per facility, as bars drawn with CSS (the
 *  page's policy allows no inline styles, so widths are set through the
 *  CSSOM, which it does allow). */
function chart(rows) {
  if (!rows.length) return h("p", { class: "empty" }, t("chart.empty"));
  const scale = Math.max(1, ...rows.map((r) => Math.max(r.expected, r.received)));
  const bar = (kind, value) => {
    const el = h("span", { class: `fill ${kind}` });
    el.style.width = `${(100 * value) / scale}%`;
    return h("span", { class: "track" }, el);
  };
  return h("div", { class: "chart" },
    h("p", { class: "legend", "aria-hidden": "true" },
      h("span", { class: "swatch expected" }), t("chart.expected"), " ",
      h("span", { class: "swatch received" }), t("chart.received")),
    h("ul", { class: "plain" }, rows.map((r) => h("li", {
      class: "chart-row",
      dataset: { facility: r.key, received: String(r.received), expected: String(r.expected), surplus: String(r.surplus) },
    },
    h("span", { class: "chart-label" }, facilityName(r.key)),
    h("span", { class: "chart-bars", role: "img", "aria-label": t("chart.row", { facility: facilityName(r.key), received: num(r.received), expected: num(r.expected) }) },
      bar("expected", r.expected), bar("received", r.received)),
    h("span", { class: "chart-value" }, t("chart.value", { received: num(r.received), expected: num(r.expected), percent: percent(r.received, r.expected) }),
      r.surplus ? h("small", { class: "surplus" }, " ", t("chart.surplus", { count: num(r.surplus) })) : null)))));
}

// ---------------------------------------------------------------- detail

function openShipment(id) {
  state.shipmentId = id;
  state.detail = null;
  writeUrl({ push: true });
  showView();
  loadDetail(id);
}

function closeShipment() {
  state.shipmentId = null;
  state.detail = null;
  writeUrl({ push: true });
  showView();
}

/** Shows the overview or the open shipment (the overview stays built
 *  underneath, so going back is instant). */
function showView() {
  if (!ui) return;
  const detail = Boolean(state.shipmentId);
  ui.overview.hidden = detail;
  ui.filters.element.hidden = detail;
  ui.tools.element.hidden = detail;
  ui.detail.hidden = !detail;
  renderDetail();
  scrollTo(0, 0);
}

function renderDetail() {
  if (!ui || !state.shipmentId) return;
  const s = state.detail;
  if (!s || s.id !== state.shipmentId || s.missing) {
    ui.review = null;
    ui.reviewHost.replaceChildren();
    ui.detailBody.replaceChildren(s?.missing && s.id === state.shipmentId
      ? h("p", { class: "message", role: "alert" }, t("detail.missing", { id: s.id, reason: s.problem }))
      : h("p", { class: "loading" }, t("detail.loading")));
    return;
  }
  const lines = new Map(s.lines.map((l) => [l.id, l]));
  const totals = new Map(s.summary.lines.map((l) => [l.line_id, l]));
  // Each receipt's possible duplicates, both ways round.
  const duplicates = new Map();
  for (const d of s.summary.duplicates) {
    duplicates.set(d.first, [...(duplicates.get(d.first) ?? []), d.second]);
    duplicates.set(d.second, [...(duplicates.get(d.second) ?? []), d.first]);
  }
  const byId = new Map(s.receipts.map((r) => [r.id, r]));
  const devices = [...new Set(s.receipts.map((r) => r.device_id))];
  const meta = (key, value) => h("div", {}, h("dt", {}, t(key)), h("dd", {}, value));

  const header = h("section", { class: "panel", id: "detail-header", dataset: { shipment: s.id } },
    h("h2", {}, `${s.donor} · ${s.reference || s.id}`),
    h("p", {}, badge(s.summary.status), " ",
      t("shipment.of", { received: num(s.summary.received), expected: num(s.summary.expected) })),
    h("dl", { class: "meta" },
      meta("detail.id", h("code", {}, s.id)),
      meta("detail.facility", facilityName(s.destination_facility)),
      meta("detail.programme", s.programme || "—"),
      meta("detail.expected_on", day(s.expected_on)),
      meta("detail.created", t("detail.created_by", { user: s.created_by, time: when(s.created_at) })),
      s.note ? meta("detail.note", s.note) : null));

  const linesTable = section("detail-lines", "detail.lines", table("detail-lines", [
    { key: "line.item", cell: (l) => h("span", { class: "stacked" }, l.item, h("small", {}, `${l.category} · ${l.id}`)) },
    { key: "line.expected", cell: (l) => `${num(totals.get(l.id)?.expected)} ${l.unit}`, num: true },
    { key: "line.received", cell: (l) => num(totals.get(l.id)?.received), num: true },
    { key: "line.damaged", cell: (l) => num((totals.get(l.id)?.damaged ?? 0) + (totals.get(l.id)?.missing_parts ?? 0)), num: true },
    { key: "line.outstanding", cell: (l) => num(totals.get(l.id)?.outstanding), num: true },
    { key: "line.other", cell: (l) => lineIssues(totals.get(l.id)) },
  ], s.lines, { rowAttrs: (l) => ({ dataset: { line: l.id } }) }));

  const receipts = [...s.receipts].sort((a, b) => b.recorded_at - a.recorded_at);
  const receiptsTable = section("detail-receipts", "detail.receipts", table("detail-receipts", [
    { key: "receipt.who", cell: (r) => h("span", { class: "stacked" }, r.recorded_by,
      h("small", { title: r.device_id }, r.device_name || t("receipt.device", { n: devices.indexOf(r.device_id) + 1, device: shortId(r.device_id) }))) },
    { key: "receipt.line", cell: (r) => lines.get(r.line_id)?.item ?? r.line_id },
    { key: "receipt.quantity", cell: (r) => num(r.quantity), num: true },
    { key: "receipt.condition", cell: (r) => h("span", { class: "stacked" }, t(`condition.${r.condition}`),
      r.stage ? h("small", { class: `stage stage-${r.stage}` }, t(`stage.${r.stage}`)) : null,
      r.reason ? h("small", { class: "reason" }, t(`reason.${r.reason}`)) : null) },
    { key: "receipt.serials", cell: (r) => r.serials.join(", ") || "—" },
    { key: "receipt.recorded_at", cell: (r) => whenExact(r.recorded_at) },
    { key: "receipt.received_at", cell: (r) => whenExact(r.received_at) },
    { key: "receipt.flags", cell: (r) => receiptFlags(r, duplicates, byId) },
    { key: "receipt.files", cell: (r) => attachmentList(s, r.id) ?? "—" },
  ], receipts, {
    empty: "detail.no_receipts",
    rowAttrs: (r) => ({ class: r.voided ? "voided" : null, dataset: { receipt: r.id, voided: String(r.voided) } }),
  }));

  const conflicts = s.conflicts.length
    ? section("detail-conflicts", "conflicts.heading", table("detail-conflicts", [
      { key: "conflict.field", cell: (c) => h("code", {}, c.path) },
      { key: "conflict.values", cell: (c) => conflictValues(c.values) },
    ], s.conflicts))
    : null;

  const reviews = section("detail-reviews", "detail.reviews", s.reviews.length
    ? h("ul", { class: "reviews plain" }, [...s.reviews].sort((a, b) => b.at - a.at).map((r) => h("li", { dataset: { review: r.id } },
      h("p", {}, h("strong", {}, r.by), " · ", when(r.at), " ",
        r.verdict ? h("span", { class: `badge verdict-${r.verdict}` }, t(`verdict.${r.verdict}`)) : null),
      r.note ? h("p", { class: "note" }, r.note) : null,
      h("p", {}, h("small", {}, r.resolves.length
        ? t("review.resolves", { count: num(r.resolves.length) })
        : t("review.whole"))))))
    : h("p", { class: "empty" }, t("detail.no_reviews")));

  const files = section("detail-files", "detail.files",
    attachmentList(s, null) ?? h("p", { class: "empty" }, t("detail.no_files")),
    s.attachments.some((a) => a.kind !== "removal")
      ? downloadButton("export-files", t("detail.export_files"),
        `/api/v1/shipments/${encodeURIComponent(s.id)}/attachments.zip`, `${s.id}-attachments.zip`)
      : null);

  // Goods-received notes: one per delivery in force, and one for every
  // receipt of the shipment.
  const shipmentPath = `/api/v1/shipments/${encodeURIComponent(s.id)}`;
  const grnButton = (deliveryId, label, id) => downloadButton(id, label,
    `${shipmentPath}/grn.pdf${deliveryId ? `?delivery=${encodeURIComponent(deliveryId)}` : ""}`,
    `${s.id}-grn${deliveryId ? `-${deliveryId}` : ""}.pdf`);
  const deliveries = s.deliveries ?? [];
  const replaced = new Set(deliveries.map((d) => d.replaces).filter(Boolean));
  const deliveriesSection = section("detail-deliveries", "detail.deliveries",
    deliveries.length
      ? table("detail-deliveries", [
        { key: "delivery.arrived_at", cell: (d) => whenExact(d.arrived_at) },
        { key: "delivery.waybill", cell: (d) => d.waybill || "—" },
        { key: "delivery.vehicle", cell: (d) => h("span", { class: "stacked" }, d.vehicle || "—", h("small", {}, d.transporter)) },
        { key: "delivery.seal", cell: (d) => `${t(`seal.${d.seal}`)}${d.seal_number ? ` ${d.seal_number}` : ""}` },
        { key: "delivery.packages", cell: (d) => `${d.packages_received ?? "?"} / ${d.packages_expected ?? "?"}`, num: true },
        { key: "delivery.recorded_by", cell: (d) => h("span", { class: "stacked" }, d.recorded_by, d.note ? h("small", {}, d.note) : null) },
        { key: "delivery.grn", cell: (d) => replaced.has(d.id)
          ? t("delivery.replaced")
          : grnButton(d.id, t("delivery.grn_pdf"), `grn-${d.id}`) },
      ], [...deliveries].sort((a, b) => b.arrived_at - a.arrived_at), {
        rowAttrs: (d) => ({ class: replaced.has(d.id) ? "voided" : null, dataset: { delivery: d.id } }),
      })
      : h("p", { class: "empty" }, t("detail.no_deliveries")),
    h("div", { class: "actions" },
      grnButton(null, t("detail.grn_pdf"), "grn-shipment"),
      ...["pdf", "xlsx"].map((format) => downloadButton(`donor-report-${format}`,
        t("detail.donor_report", { format: format.toUpperCase() }),
        `${shipmentPath}/donor-report.${format}`, `${s.id}-donor-report.${format}`))));

  put(ui.detailBody, header, deliveriesSection, linesTable, unitsSection(s), receiptsTable, files, conflicts, reviews);
  showThumbnails(ui.detailBody);
  if (may("review")) {
    if (ui.review?.shipment !== s.id) {
      ui.review = reviewForm(s.id);
      ui.reviewHost.replaceChildren(ui.review.element);
    }
    ui.review.update(s, lines);
  }
}

/** A button that downloads `path` and saves it under the server's name
 *  (`fallback` if it gives none). */
function downloadButton(id, label, path, fallback) {
  const button = h("button", { type: "button", class: "secondary", id }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const { blob, filename } = await api.file(path, fallback);
      saveBlob(blob, filename);
    } catch (e) {
      showProblem(problemText(e));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** Files attached to a receipt (`receiptId`) or to the shipment (`null`):
 *  a thumbnail (filled in by `showThumbnails`) that opens the whole file. */
function attachmentList(s, receiptId) {
  const shown = s.attachments.filter((a) => a.kind !== "removal" && (a.receipt_id ?? null) === receiptId);
  if (!shown.length) return null;
  return h("ul", { class: "attachments plain" }, shown.map((a) => {
    const label = a.kind === "signature" ? `${a.signer_name} (${a.signer_role})` : (a.note || t(`file.${a.kind}`));
    const picture = a.media_type === "application/pdf"
      ? h("span", { class: "document-icon" }, "PDF")
      : h("img", { alt: label, dataset: { sha: a.sha256 }, width: "96", height: "72" });
    return h("li", { dataset: { attachment: a.attachment_id, removed: String(a.removed) }, class: a.removed ? "voided" : null },
      h("button", {
        type: "button", class: "link open-file", title: t("detail.open_file"),
        onclick: async () => {
          const { blob } = await api.file(`/api/v1/blobs/${a.sha256}`, a.attachment_id);
          window.open(URL.createObjectURL(blob), "_blank", "noopener");
        },
      }, picture),
      h("small", {}, label, a.removed ? ` · ${t("detail.file_removed")}` : ""));
  }));
}

/** Object URLs of the thumbnails on screen, freed at the next render. */
let thumbnailUrls = [];

async function showThumbnails(host) {
  const old = thumbnailUrls;
  thumbnailUrls = [];
  for (const img of host.querySelectorAll("img[data-sha]")) {
    try {
      const { blob } = await api.file(`/api/v1/blobs/${img.dataset.sha}/thumbnail`, `${img.dataset.sha}.jpg`);
      const url = URL.createObjectURL(blob);
      thumbnailUrls.push(url);
      img.src = url;
    } catch {
      // Not uploaded yet: the alt text says what it is.
      img.classList.add("missing");
    }
  }
  for (const url of old) URL.revokeObjectURL(url);
}

function lineIssues(totals) {
  if (!totals) return "—";
  const parts = [];
  if (totals.wrong_item) parts.push(t("line.wrong_item", { count: num(totals.wrong_item) }));
  if (totals.over_received) parts.push(t("line.over_received", { count: num(totals.over_received) }));
  if (totals.serials_unexpected.length) parts.push(t("line.serials_unexpected", { serials: totals.serials_unexpected.join(", ") }));
  if (totals.outstanding === 0 && totals.serials_missing.length) parts.push(t("line.serials_missing", { serials: totals.serials_missing.join(", ") }));
  return parts.length ? parts.join(" · ") : "—";
}

/** A receipt as a person recognises it: who recorded it, and when. */
function receiptWho(receipt) {
  return receipt?.recorded_by ? t("receipt.who", { user: receipt.recorded_by, time: when(receipt.recorded_at) }) : "?";
}

function receiptFlags(r, duplicates, byId) {
  const flags = [];
  if (r.voided) flags.push(h("span", { class: "badge voided-badge" }, t("receipt.voided")));
  if (r.voids) flags.push(h("span", { class: "badge", title: r.voids }, t("receipt.voids", { receipt: receiptWho(byId.get(r.voids)) })));
  for (const other of duplicates.get(r.id) ?? []) {
    flags.push(h("span", { class: "badge discrepancy", title: other }, t("receipt.duplicate", { receipt: receiptWho(byId.get(other)) })));
  }
  const note = r.note ? h("div", {}, h("small", {}, t("receipt.note", { note: r.note }))) : null;
  return flags.length || note ? h("span", {}, flags, note) : "—";
}

/** The review form. It stays in place while the detail above it
 *  refreshes (a receipt arriving must not eat a half-typed note); only its
 *  list of receipts to pick from follows the data. */
function reviewForm(shipmentId) {
  const note = h("textarea", { id: "review-note", rows: 3 });
  const verdict = h("select", { id: "review-verdict" },
    h("option", { value: "" }, t("verdict.none")),
    VERDICTS.map((v) => h("option", { value: v }, t(`verdict.${v}`))));
  const list = h("div", { class: "checks" });
  const problem = h("p", { class: "message", role: "alert", hidden: true });
  const done = h("p", { id: "review-done", class: "message ok", role: "status", hidden: true });
  const submit = h("button", { type: "submit", id: "review-submit" }, t("review.submit"));
  const form = h("form", {
    id: "review-form",
    onsubmit: async (event) => {
      event.preventDefault();
      message(done, null);
      if (!note.value.trim() && !verdict.value) {
        message(problem, t("review.empty"));
        return;
      }
      message(problem, null);
      submit.disabled = true;
      try {
        const resolves = [...list.querySelectorAll("input:checked")].map((b) => b.value);
        const detail = await api.post(`/api/v1/shipments/${encodeURIComponent(shipmentId)}/reviews`, {
          id: freshId(),
          note: note.value.trim(),
          verdict: verdict.value || null,
          resolves,
        });
        form.reset();
        if (state.shipmentId === shipmentId) {
          state.detail = { ...detail, units: state.detail?.units };
          renderDetail();
        }
        message(done, t("review.done"), { ok: true });
        requestRefresh({ now: true });
      } catch (error) {
        message(problem, t("review.failed", { reason: problemText(error) }));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("label", { for: "review-note" }, t("review.note")), note,
  h("label", { for: "review-verdict" }, t("review.verdict")), verdict,
  h("fieldset", { class: "resolves" },
    h("legend", {}, t("review.pick")),
    h("p", { class: "hint" }, t("review.pick_hint")),
    list),
  problem,
  h("div", { class: "actions" }, submit));

  /** The receipts one may pick: those that count. Existing boxes stay
   *  (ticked or focused), new ones are added, gone ones removed. */
  const update = (s, lines) => {
    const candidates = s.receipts
      .filter((r) => !r.voided && r.quantity > 0)
      .sort((a, b) => a.recorded_at - b.recorded_at);
    const keep = new Set(candidates.map((r) => r.id));
    for (const el of [...list.children]) if (!keep.has(el.dataset.receipt)) el.remove();
    for (const r of candidates) {
      const text = t("review.receipt", {
        user: r.recorded_by,
        quantity: num(r.quantity),
        condition: t(`condition.${r.condition}`),
        item: lines.get(r.line_id)?.item ?? r.line_id,
        time: when(r.recorded_at),
      });
      const existing = [...list.children].find((el) => el.dataset.receipt === r.id);
      if (existing) {
        existing.querySelector("label").textContent = text;
        continue;
      }
      const box = h("input", { type: "checkbox", id: `resolve-${r.id}`, value: r.id });
      list.append(h("div", { class: "check", dataset: { receipt: r.id } }, box, h("label", { for: box.id }, text)));
    }
    if (!candidates.length) list.replaceChildren(h("p", { class: "empty" }, t("detail.no_receipts")));
    else list.querySelector("p.empty")?.remove();
  };
  return {
    shipment: shipmentId,
    element: section("detail-review", "review.heading", form, done),
    update,
  };
}

// ---------------------------------------------------------------- start

async function start() {
  if (!api.user()) {
    stopLive();
    ui = null;
    return renderLogin();
  }
  readUrl();
  main.replaceChildren(h("p", { class: "loading" }, t("detail.loading")));
  try {
    const [user, facilities] = await Promise.all([api.refreshUser(), api.get("/api/v1/facilities")]);
    if (user?.role === "admin") {
      await api.logout();
      return renderLogin(t("login.admin"));
    }
    state.facilities = facilities;
  } catch (error) {
    if (!api.user()) return;
    main.replaceChildren(h("p", { class: "message", role: "alert" }, t("error.load", { reason: problemText(error) })),
      h("button", { type: "button", onclick: start }, t("error.retry")));
    renderHeader();
    return;
  }
  renderHeader();
  buildShell();
  fillFacilityOptions();
  showView();
  requestRefresh({ detail: true, now: true });
  startLive();
}

async function boot() {
  await setLanguage(preferredLanguage(), { base: I18N_BASE });
  api.onExpired = () => {
    stopLive();
    ui = null;
    renderLogin(t("login.expired"));
  };
  document.getElementById("lang").addEventListener("click", async () => {
    const next = LANGUAGES.find((l) => l !== language());
    await setLanguage(next, { remember: true, base: I18N_BASE });
    renderHeader();
    if (!api.user()) return renderLogin();
    // Rebuild every part in the new language; the data is already here.
    buildShell();
    fillFacilityOptions();
    renderSuggestions();
    renderOverview();
    showView();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    stopLive();
    ui = null;
    state.data = null;
    state.detail = null;
    state.refreshedAt = null;
    state.shipmentRows = PAGE_SIZE;
    state.discrepancyRows = PAGE_SIZE;
    state.openOnly = true;
    await api.logout();
    renderLogin();
  });
  addEventListener("popstate", () => {
    if (!ui) return;
    const before = filterQuery(state.filter);
    readUrl();
    fillFacilityOptions();
    showView();
    if (state.shipmentId) loadDetail(state.shipmentId);
    if (filterQuery(state.filter) !== before) requestRefresh({ now: true });
  });
  await start();
}

boot().catch((e) => {
  main.textContent = `aidsync: ${e?.message ?? e}`;
});
