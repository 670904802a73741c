// The receiver's app: log in, see the facility's shipments, record and
// cancel receipts, see who recorded what, and always see what waits to
// sync. All strings come from i18n/*.json; all data from aidsync.js.

import { AuthError, Phone, ServerError, preparePhoto } from "./aidsync.js";
import { LANGUAGES, formatDay, formatTime, language, preferredLanguage, setLanguage, t, translate } from "./i18n.js";

const main = document.getElementById("main");
let phone;
/** What the main area shows: { view: "login" | "list" | "shipment", id }. */
let route = { view: "list" };
/** A short confirmation ("Saved on this phone.") the status bar shows for
 *  a few seconds, over anything else it would say. */
let notice = null;
let noticeTimer = null;

/** What the shipment list's search holds, kept across re-renders. */
let listQuery = "";

function notify(text) {
  notice = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice = null;
    renderStatus();
  }, 4000);
  renderStatus();
}

/** Creates an element: h("button", { onclick }, "text", child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function show(...children) {
  // Like h(): an absent part (null) shows nothing, never the word "null".
  main.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function message(text, { ok = false } = {}) {
  const el = document.getElementById("message");
  el.hidden = !text;
  el.textContent = text ?? "";
  el.classList.toggle("ok", ok);
}

/** What to tell a person about a failed sync, and what to do. */
function syncProblem(error) {
  if (error instanceof AuthError) return t("sync.login_again");
  if (!navigator.onLine) return t("status.offline");
  return t("sync.failed", { reason: error.message });
}

async function renderStatus() {
  const status = document.getElementById("status");
  status.hidden = !phone.account();
  document.getElementById("logout").hidden = !phone.account();
  if (!phone.account()) return;
  const pending = await phone.pending();
  const last = await phone.lastSyncAt();
  document.getElementById("pending").textContent = pending > 0
    ? t("status.pending", { count: pending })
    : t("status.all_synced");
  document.getElementById("pending").dataset.pending = String(pending);
  document.getElementById("last-sync").textContent = phone.inFlight
    ? t("status.syncing")
    : last ? t("status.last_sync", { time: formatTime(last) }) : t("status.never_synced");
  document.getElementById("sync").disabled = Boolean(phone.inFlight);
  // For weeks without a network: the waiting records, as a file a courier
  // takes to a coordinator.
  document.getElementById("carry").hidden = pending === 0;
  const waiting = (await phone.files()).filter((f) => f.state === "waiting" || f.state === "uploading");
  const bytes = waiting.reduce((sum, f) => sum + f.size - f.offset, 0);
  const files = document.getElementById("files-waiting");
  files.hidden = waiting.length === 0;
  files.textContent = waiting.length ? t("files.waiting", { count: waiting.length, size: formatBytes(bytes) }) : "";
  files.dataset.waiting = String(waiting.length);
  if (notice) {
    message(notice, { ok: true });
  } else if (!navigator.onLine) {
    // Reassurance, not an alarm: working offline is what the app is for.
    message(t("status.offline"), { ok: true });
  } else if (phone.lastError) {
    message(syncProblem(phone.lastError));
  } else if (phone.lastReport?.refused?.length) {
    const [shipment, reason] = phone.lastReport.refused[0];
    message(t("sync.refused", { shipment, reason }));
  } else {
    message(null);
  }
}

function renderLogin(problem) {
  const user = h("input", { id: "login-user", name: "user", autocomplete: "username", required: true, autocapitalize: "none" });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "message", role: "alert", hidden: !problem }, problem ?? "");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await phone.login(user.value.trim(), password.value);
        route = { view: "list" };
        render();
        phone.sync().catch(() => {});
      } catch (e) {
        error.hidden = false;
        error.textContent = loginProblem(e);
      }
    },
  },
  h("h2", {}, t("login.heading")),
  h("label", { for: "login-user" }, t("login.user")), user,
  h("label", { for: "login-password" }, t("login.password")), password,
  error,
  h("div", { class: "actions" }, h("button", { type: "submit", id: "login-submit" }, t("login.submit"))));
  show(form);
}

function loginProblem(e) {
  if (e instanceof ServerError) {
    if (e.status === 401) return t("login.failed");
    if (e.status === 429) return t("login.throttled", { seconds: e.retryAfter ?? 60 });
    return e.message;
  }
  if (e?.name === "OtherUsersRecordsPending") return t("login.other_user");
  if (e instanceof TypeError) return t("login.offline");
  return e?.message ?? String(e);
}

async function renderList() {
  const rows = await phone.shipments();
  const account = phone.account();
  const where = account?.facility_name ?? account?.facility ?? account?.region ?? "";
  const cards = rows.map((s) =>
    h("button", {
      class: "card",
      type: "button",
      dataset: { shipment: s.id },
      onclick: () => { route = { view: "shipment", id: s.id }; render(); },
    },
    h("h3", {}, `${s.donor} · ${s.reference || s.id}`),
    h("p", {}, h("span", { class: `badge ${s.status}` }, t(`status.${s.status}`)), " ",
      t("shipment.received_of", { received: s.received, expected: s.expected }),
      s.surplus ? h("span", { class: "surplus" }, " · ", t("shipment.surplus", { count: s.surplus })) : null,
      s.wrong_item ? h("span", { class: "wrong-item" }, " · ", t("shipment.wrong_item", { count: s.wrong_item })) : null),
    s.expected_on ? h("p", {}, t("shipment.expected_on", { date: formatDay(s.expected_on) })) : null,
    s.refused ? h("p", { class: "message" }, s.refused) : null));
  // Search within the phone's shipments: a serial number on a crate, a
  // waybill reference, an item. Filters the cards as one types.
  const none = h("p", { id: "search-none", hidden: true }, t("shipments.none_match"));
  const filter = () => {
    const q = listQuery.trim().toLowerCase();
    let shown = 0;
    cards.forEach((card, i) => {
      card.hidden = Boolean(q) && !rows[i].search.includes(q);
      if (!card.hidden) shown += 1;
    });
    none.hidden = shown > 0 || !cards.length;
  };
  const search = h("input", {
    id: "shipment-search", type: "search", autocomplete: "off", autocapitalize: "characters",
    "aria-label": t("shipments.search"), placeholder: t("shipments.search"), value: listQuery,
    oninput: () => {
      listQuery = search.value;
      filter();
    },
  });
  filter();
  show(h("h2", {}, t("shipments.heading", { facility: where })),
    cards.length > 1 ? search : null,
    none,
    ...(cards.length ? cards : [h("p", {}, t("shipments.empty"))]));
}

async function renderShipment(id) {
  let s;
  try {
    s = await phone.shipment(id);
  } catch {
    route = { view: "list" };
    return renderList();
  }
  const totals = new Map(s.summary.lines.map((l) => [l.line_id, l]));
  const lines = s.lines.map((line) => {
    const figures = totals.get(line.id);
    return h("div", { class: "line", dataset: { line: line.id } },
      h("h3", {}, line.item),
      h("div", { class: "figures" },
        h("div", {}, h("strong", {}, String(figures.expected)), t("line.expected")),
        // Counted up to the expected quantity; what is beyond is surplus,
        // shown apart so "17 of 10" never reads as success.
        h("div", {}, h("strong", { class: "received" }, String(figures.received_against_expected)), t("line.received")),
        h("div", {}, h("strong", { class: "outstanding" }, String(figures.outstanding)), t("line.outstanding")),
        figures.over_received
          ? h("div", {}, h("strong", { class: "surplus" }, `+${figures.over_received}`), t("line.surplus"))
          : null),
      lineProblems(figures),
      h("button", { type: "button", class: "record", onclick: () => renderReceiptForm(s, line) }, t("line.record")));
  });
  const files = new Map((await phone.files()).map((f) => [f.sha256, f]));
  const history = s.receipts.length
    ? h("ul", { class: "history" }, ...s.receipts.map((r) => receiptEntry(s, r, files)))
    : h("p", {}, t("history.empty"));
  show(
    h("button", { type: "button", class: "link", onclick: () => { route = { view: "list" }; render(); } }, t("shipment.back")),
    h("h2", {}, `${s.donor} · ${s.reference || s.id}`),
    h("p", {}, h("span", { class: `badge ${s.status}` }, t(`status.${s.status}`))),
    s.refused ? refusalBox(s) : null,
    reviewsSection(s),
    deliveriesSection(s),
    ...lines,
    await unitsSection(s),
    filesSection(s, files),
    h("h2", {}, t("history.heading")),
    history);
  showPictures();
}

/** Object URLs of the pictures on screen, freed at the next render. */
let pictureUrls = [];

/** Fills every picture on screen from the phone's copy of the file, or
 *  the server's thumbnail (a colleague's photo). */
async function showPictures() {
  for (const url of pictureUrls) URL.revokeObjectURL(url);
  pictureUrls = [];
  for (const img of main.querySelectorAll("img[data-sha]")) {
    const url = await phone.fileUrl(img.dataset.sha);
    if (!url) continue;
    pictureUrls.push(url);
    img.src = url;
  }
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Files attached to a receipt (`receiptId`) or to the shipment (`null`),
 *  not removed, each with a picture and where its upload stands. */
function attachmentList(s, receiptId, files) {
  const shown = s.attachments.filter((a) => a.kind !== "removal" && !a.removed && (a.receipt_id ?? null) === receiptId);
  if (!shown.length) return null;
  return h("ul", { class: "attachments" }, ...shown.map((a) => {
    const file = files.get(a.sha256);
    const state = file
      ? file.state === "uploading"
        ? t("files.uploading", { percent: Math.floor((100 * file.offset) / Math.max(1, file.size)) })
        : file.state === "refused" ? t("files.refused", { reason: file.reason ?? "" }) : t(file.state === "done" ? "files.done" : "files.waiting_state")
      : t("files.elsewhere");
    const picture = a.media_type === "application/pdf"
      ? h("span", { class: "document-icon", "aria-hidden": "true" }, "PDF")
      : h("img", { alt: a.note || t(`files.kind_${a.kind}`), dataset: { sha: a.sha256 }, width: "96", height: "72" });
    return h("li", { class: "attachment", dataset: { attachment: a.attachment_id, sha: a.sha256, state: file?.state ?? "elsewhere" } },
      picture,
      h("div", {},
        h("small", {}, a.kind === "signature" ? `${t("files.kind_signature")}: ${a.signer_name} (${a.signer_role})` : (a.note || t(`files.kind_${a.kind}`))),
        h("div", {}, h("small", { class: "file-state" }, state)),
        h("button", {
          type: "button", class: "link remove-attachment",
          onclick: async () => {
            const why = prompt(t("files.remove_why"));
            if (why === null) return;
            await phone.removeAttachment(s.id, a.attachment_id, why);
            render();
          },
        }, t("files.remove"))));
  }));
}

/** Lets the person pick or take a file and attaches it. `accept`: what the
 *  chooser offers; photos are shrunk first, PDFs kept as they are. */
function pickAndAttach(s, { receiptId = null, kind, accept, capture = null }) {
  const input = h("input", { type: "file", accept, capture, hidden: true });
  input.addEventListener("change", async () => {
    const [chosen] = input.files;
    input.remove();
    if (!chosen) return;
    try {
      if (chosen.type === "application/pdf") {
        await phone.attach(s.id, { blob: chosen, kind: "document", receiptId });
      } else {
        const { blob, width, height } = await preparePhoto(chosen);
        await phone.attach(s.id, { blob, kind, receiptId, width, height });
      }
      notify(t("files.saved"));
      phone.sync().catch(() => {});
    } catch (e) {
      message(e.name === "TooLarge" ? t("files.too_large") : t("files.failed", { reason: e.message }));
    }
    render();
  });
  document.body.append(input);
  input.click();
}

/** The shipment's own papers and signatures, and the buttons to add them. */
function filesSection(s, files) {
  if (!s.can_attach) {
    return h("section", { id: "files", class: "files" }, h("h2", {}, t("files.heading")), h("p", {}, t("files.not_yet")));
  }
  return h("section", { id: "files", class: "files" },
    h("h2", {}, t("files.heading")),
    attachmentList(s, null, files),
    h("div", { class: "actions" },
      h("button", {
        type: "button", id: "add-document", class: "secondary",
        onclick: () => pickAndAttach(s, { kind: "document", accept: "image/*,application/pdf" }),
      }, t("files.add_document")),
      h("button", { type: "button", id: "sign-delivery", class: "secondary", onclick: () => renderSignature(s) }, t("files.sign"))));
}

/** A signature drawn with a finger, with the signer's name and role. */
function renderSignature(s) {
  const canvas = h("canvas", { id: "signature-pad", class: "signature", width: "320", height: "160" });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.lineWidth = 3;
  ctx.lineCap = "round";
  let drawing = false;
  let drawn = false;
  const at = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * (canvas.width / box.width), (e.clientY - box.top) * (canvas.height / box.height)];
  };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); ctx.beginPath(); ctx.moveTo(...at(e)); });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...at(e));
    ctx.stroke();
    drawn = true;
    problem.hidden = true;
  });
  canvas.addEventListener("pointerup", () => { drawing = false; });
  const name = h("input", { id: "signer-name", required: true, autocomplete: "name" });
  const role = h("select", { id: "signer-role" },
    h("option", { value: "receiving_officer" }, t("files.role_receiving_officer")),
    h("option", { value: "delivery_person" }, t("files.role_delivery_person")));
  // Signed at a truck: the signature goes on that delivery's note (the
  // newest by default), or on the shipment's as a whole.
  const deliveries = (s.deliveries ?? []).filter((d) => !d.replaced);
  const delivery = deliveries.length
    ? h("select", { id: "signature-delivery" },
      h("option", { value: "" }, t("delivery.none")),
      ...deliveries.map((d) => h("option", { value: d.id }, deliveryLabel(d))))
    : null;
  if (delivery) delivery.value = deliveries[0].id;
  const problem = h("p", { class: "message", role: "alert", hidden: true });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      if (!drawn) {
        problem.hidden = false;
        problem.textContent = t("files.sign_first");
        return;
      }
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
      try {
        await phone.attach(s.id, {
          blob, kind: "signature", width: canvas.width, height: canvas.height,
          deliveryId: delivery?.value || null,
          signer: { name: name.value.trim(), role: role.selectedOptions[0].textContent },
        });
        notify(t("files.saved"));
        phone.sync().catch(() => {});
        route = { view: "shipment", id: s.id };
        render();
      } catch (e) {
        problem.hidden = false;
        problem.textContent = e.message;
      }
    },
  },
  h("label", { for: "signer-name" }, t("files.signer_name")), name,
  h("label", { for: "signer-role" }, t("files.signer_role")), role,
  delivery ? h("label", { for: "signature-delivery" }, t("receipt.delivery")) : null, delivery,
  h("p", {}, t("files.sign_here")), canvas, problem,
  h("div", { class: "actions" },
    h("button", { type: "submit", id: "signature-save" }, t("files.save_signature")),
    h("button", { type: "button", class: "secondary", onclick: () => render() }, t("receipt.cancel"))));
  show(h("h2", {}, t("files.sign")), form);
}

/** What is wrong on a line, in words: the discrepancies the coordinator
 *  sees for it (figures from shared's summary). */
function lineProblems(figures) {
  const problems = [];
  if (figures.damaged) problems.push(t("problem.damaged", { count: figures.damaged }));
  if (figures.missing_parts) problems.push(t("problem.missing_parts", { count: figures.missing_parts }));
  if (figures.wrong_item) problems.push(t("problem.wrong_item", { count: figures.wrong_item }));
  if (figures.over_received) problems.push(t("problem.over_received", { count: figures.over_received }));
  if (figures.serials_unexpected.length) {
    problems.push(t("problem.serials_unexpected", { serials: figures.serials_unexpected.join(", ") }));
  }
  if (figures.outstanding === 0 && figures.serials_missing.length) {
    problems.push(t("problem.serials_missing", { serials: figures.serials_missing.join(", ") }));
  }
  if (!problems.length) return null;
  return h("ul", { class: "problems" }, ...problems.map((p) => h("li", {}, p)));
}

/** The coordinators' review notes on this shipment, newest first. */
function reviewsSection(s) {
  if (!s.reviews.length) return null;
  const reviews = [...s.reviews].sort((a, b) => b.at - a.at);
  return h("section", { id: "reviews", class: "reviews" },
    h("h2", {}, t("reviews.heading")),
    h("ul", { class: "plain" }, ...reviews.map((r) => h("li", { dataset: { review: r.id } },
      h("div", {}, h("strong", {}, r.verdict ? t(`verdict.${r.verdict}`) : t("reviews.note")),
        " · ", r.by, " · ", formatTime(r.at)),
      r.note ? h("p", {}, r.note) : null,
      r.resolves.length ? h("small", {}, t("reviews.resolves", { count: r.resolves.length })) : null))));
}

/** What the server refused on this shipment, and the way out: rebuild from
 *  the server's copy, keeping every record that is still valid. */
function refusalBox(s) {
  return h("section", { class: "refusal", role: "alert" },
    h("p", { class: "message" }, t("refusal.explain", { reason: s.refused })),
    h("button", {
      type: "button", id: "discard-refused", class: "secondary",
      onclick: async () => {
        if (!confirm(t("refusal.confirm"))) return;
        const recovery = await phone.discardRefused(s.id);
        const { kept, discarded, discarded_deliveries: lostDeliveries, discarded_unit_steps: lostSteps } = recovery;
        await render();
        notify(t("refusal.done", {
          kept: kept.length + recovery.kept_deliveries.length + recovery.kept_unit_steps.length,
          discarded: discarded.length + lostDeliveries.length + lostSteps.length,
        }));
        if (discarded.length || lostDeliveries.length || lostSteps.length) {
          // Still on screen after the re-render: the person must re-check these.
          const entry = (text, why) => h("li", {}, text, h("div", {}, h("small", {}, why)));
          main.prepend(h("section", { class: "refusal", id: "discarded" },
            h("p", {}, t("refusal.discarded")),
            h("ul", {},
              ...discarded.map(({ receipt, reason: why }) => entry(
                t("history.entry", { user: receipt.recorded_by, quantity: receipt.quantity, condition: t(`condition.${receipt.condition}`) })
                  + (receipt.serials.length ? ` · ${receipt.serials.join(", ")}` : ""), why)),
              ...lostDeliveries.map(({ delivery, reason: why }) => entry(deliveryLabel(delivery), why)),
              ...lostSteps.map(({ event, reason: why }) => entry(`${event.serial} · ${t(`unit.step_${event.step}`)}`, why)))));
        }
      },
    }, t("refusal.discard")),
  );
}

function receiptEntry(s, r, files) {
  const line = s.lines.find((l) => l.id === r.line_id);
  // A cancellation counts nothing: say what it does, not "0 × Good".
  const text = r.voids && r.quantity === 0
    ? t("history.cancellation", { user: r.recorded_by })
    : t("history.entry", {
      user: r.recorded_by,
      quantity: r.quantity,
      condition: t(`condition.${r.condition}`),
    });
  return h("li", { dataset: { receipt: r.id } },
    h("div", { class: r.voided ? "voided" : null }, text, " · ", line?.item ?? r.line_id),
    h("small", {}, formatTime(r.recorded_at), r.voided ? ` · ${t("history.voided")}` : "",
      r.voids && r.quantity > 0 ? ` · ${t("history.voids")}` : ""),
    // One serial never breaks across lines; the list wraps between them.
    r.serials.length ? h("div", { class: "serials" }, ...r.serials.map((x) => h("span", { class: "serial" }, x))) : null,
    r.stage || r.reason
      ? h("div", { class: "stage" },
        r.stage ? h("span", { class: `badge stage-${r.stage}` }, t(`stage.${r.stage}`)) : null,
        r.reason ? h("small", {}, " ", t(`reason.${r.reason}`)) : null)
      : null,
    r.note ? h("div", {}, h("small", {}, r.note)) : null,
    attachmentList(s, r.id, files),
    // Inspection after the count at the truck: a new receipt (accepted or
    // rejected) that voids the provisional one, so the count stays on record.
    line && s.can_record_delivery && !r.voided && !r.voids && r.quantity > 0 && (r.stage ?? "provisional") === "provisional"
      ? h("button", {
        type: "button", class: "link inspect",
        onclick: () => renderReceiptForm(s, line, {
          voids: r.id, quantity: r.quantity, condition: r.condition, serials: r.serials,
          stage: "accepted", deliveryId: r.delivery_id,
        }),
      }, t("history.inspect"))
      : null,
    s.can_attach && !r.voids
      ? h("button", {
        type: "button", class: "link add-photo",
        onclick: () => pickAndAttach(s, { receiptId: r.id, kind: "photo", accept: "image/*", capture: "environment" }),
      }, t("files.add_photo"))
      : null,
    !r.voided && !r.voids
      ? h("button", {
        type: "button", class: "link void",
        onclick: async () => {
          if (!confirm(t("history.void_confirm"))) return;
          await phone.voidReceipt(s.id, r);
          render();
        },
      }, t("history.void"))
      : null);
}

/** Reasons a receipt may differ from the manifest, as the model names them. */
const REASONS = ["short", "over", "damaged_in_transit", "missing_parts", "wrong_item", "expired", "other"];

/** `preset` fills the form for an inspection: the receipt it replaces
 *  (`voids`), its quantity, condition, serials, delivery and a stage. */
function renderReceiptForm(s, line, preset = {}) {
  // No `min` here: the model decides what a valid quantity is and says why.
  const quantity = h("input", {
    id: "receipt-quantity", type: "number", inputmode: "numeric", value: String(preset.quantity ?? 1), required: true,
  });
  const condition = h("select", { id: "receipt-condition" },
    ...["good", "damaged", "missing_parts", "wrong_item"].map((c) => h("option", { value: c }, t(`condition.${c}`))));
  if (preset.condition) condition.value = preset.condition;
  const staged = s.can_record_delivery;
  const stage = h("select", { id: "receipt-stage" },
    ...["provisional", "accepted", "rejected"].map((v) => h("option", { value: v }, t(`stage.${v}`))));
  if (preset.stage) stage.value = preset.stage;
  const reasonSelect = h("select", { id: "receipt-reason" },
    h("option", { value: "" }, t("reason.none")),
    ...REASONS.map((v) => h("option", { value: v }, t(`reason.${v}`))));
  const reasonHint = h("p", { id: "receipt-reason-hint", class: "hint", hidden: true });
  // The reason that fits is offered as the person fills the form (short
  // when fewer than outstanding, damaged in transit when damaged…), shown
  // with why, until they choose one themselves.
  let reasonChosen = false;
  // Before the form's own input handler, which offers a reason.
  reasonSelect.addEventListener("input", () => { reasonChosen = true; });
  // The latest offer: Save waits for it, so what is saved is what is shown.
  let offered = Promise.resolve();
  const offerReason = () => {
    offered = offered.then(async () => {
      if (reasonChosen) return;
      const { why, suggested } = await phone.reasonNeeded(s.id, { ...draft(), reason: null }).catch(() => ({}));
      if (reasonChosen) return;
      reasonSelect.value = suggested ?? "";
      reasonHint.hidden = !why;
      reasonHint.textContent = why ? t("reason.offered") : "";
    });
  };
  // Receipts go with the truck that brought them: the newest delivery by
  // default, since that is the one at the gate.
  const deliveries = (s.deliveries ?? []).filter((d) => !d.replaced);
  const delivery = deliveries.length
    ? h("select", { id: "receipt-delivery" },
      h("option", { value: "" }, t("delivery.none")),
      ...deliveries.map((d) => h("option", { value: d.id }, deliveryLabel(d))))
    : null;
  if (delivery) delivery.value = preset.deliveryId ?? deliveries[0].id;
  const serials = h("textarea", { id: "receipt-serials", autocapitalize: "characters" });
  if (preset.serials?.length) serials.value = preset.serials.join("\n");
  const note = h("textarea", { id: "receipt-note" });
  const error = h("p", { class: "message", role: "alert", hidden: true });
  const warningBox = h("section", { id: "receipt-warnings", class: "warnings", role: "status", hidden: true });
  const save = h("button", { type: "submit", id: "receipt-save" }, t("receipt.save"));
  const scan = scanner(serials);
  const checklist = serialChecklist(s, line, serials, quantity);
  // What the person confirmed they saw, for this exact receipt; any edit
  // asks again.
  let confirmed = null;
  const draft = () => ({
    lineId: line.id,
    quantity: Number(quantity.value),
    condition: condition.value,
    serials: serials.value.split("\n").map((x) => x.trim()).filter(Boolean),
    note: note.value.trim(),
    voids: preset.voids ?? null,
    stage: staged ? stage.value : null,
    reason: reasonSelect.value || null,
    deliveryId: delivery?.value || null,
  });
  const form = h("form", {
    oninput: () => {
      offerReason();
      confirmed = null;
      warningBox.hidden = true;
      save.textContent = t("receipt.save");
    },
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await offered;
        const receipt = draft();
        // A reason first: the model refuses a short, over, damaged or
        // rejected count without one, so ask here, in the person's words.
        if ((await phone.reasonNeeded(s.id, receipt)).why) {
          reasonHint.textContent = t("reason.required");
          reasonHint.hidden = false;
          reasonSelect.focus();
          return;
        }
        reasonHint.hidden = true;
        const key = JSON.stringify(receipt);
        // Warned first, standing at the crate, where a fix takes seconds;
        // saved anyway once confirmed (reality wins), with what was seen.
        const warnings = await phone.receiptWarnings(s.id, receipt).catch(() => []);
        if (warnings.length && confirmed !== key) {
          confirmed = key;
          warningBox.replaceChildren(
            h("p", {}, h("strong", {}, t("warning.heading"))),
            h("ul", {}, ...warnings.map((w) => h("li", { dataset: { warning: w.kind } }, warningText(w)))),
            h("p", {}, t("warning.confirm")));
          warningBox.hidden = false;
          save.textContent = t("warning.save_anyway");
          warningBox.scrollIntoView?.({ block: "nearest" });
          return;
        }
        if (warnings.length) {
          const seen = warnings.map(warningText).join("; ");
          receipt.note = [receipt.note, t("warning.recorded", { warnings: seen })].filter(Boolean).join("\n");
        }
        await phone.recordReceipt(s.id, receipt);
        scan?.stop();
        route = { view: "shipment", id: s.id };
        await render();
        notify(t("receipt.saved"));
      } catch (e) {
        error.hidden = false;
        error.textContent = e?.name === "StoreFailed"
          ? t("error.storage", { reason: e.message })
          : t("receipt.refused", { reason: reason(e) });
      }
    },
  },
  h("h2", {}, t("receipt.heading", { item: line.item })),
  h("label", { for: "receipt-quantity" }, t("receipt.quantity")), quantity,
  h("label", { for: "receipt-condition" }, t("receipt.condition")), condition,
  staged ? h("label", { for: "receipt-stage" }, t("receipt.stage")) : null, staged ? stage : null,
  h("label", { for: "receipt-reason" }, t("receipt.reason")), reasonSelect, reasonHint,
  delivery ? h("label", { for: "receipt-delivery" }, t("receipt.delivery")) : null, delivery,
  checklist,
  h("label", { for: "receipt-serials" }, t("receipt.serials")), serials,
  scan?.element,
  h("label", { for: "receipt-note" }, t("receipt.note")), note,
  warningBox,
  error,
  h("div", { class: "actions" },
    h("button", { type: "button", id: "receipt-cancel", class: "secondary", onclick: () => { scan?.stop(); render(); } }, t("receipt.cancel")),
    save));
  show(form);
  offerReason();
  quantity.focus();
}

/** A delivery in a few words: waybill, vehicle, when it arrived. */
function deliveryLabel(d) {
  return [d.waybill || t("delivery.no_waybill"), d.vehicle, formatTime(d.arrived_at)].filter(Boolean).join(" · ");
}

/** The shipment's deliveries (trucks) and the button to record one. */
function deliveriesSection(s) {
  if (!s.can_record_delivery) return null;
  const items = (s.deliveries ?? []).map((d) => h("li", { dataset: { delivery: d.id }, class: d.replaced ? "voided" : null },
    h("div", {}, deliveryLabel(d)),
    h("small", {},
      [d.transporter, t(`seal.${d.seal}`) + (d.seal_number ? ` ${d.seal_number}` : ""),
        d.packages_received != null || d.packages_expected != null
          ? t("delivery.packages_of", { received: d.packages_received ?? "?", expected: d.packages_expected ?? "?" })
          : null,
        d.replaced ? t("delivery.replaced") : null].filter(Boolean).join(" · ")),
    d.note ? h("div", {}, h("small", {}, d.note)) : null,
    d.replaced ? null : h("button", {
      type: "button", class: "secondary grn", onclick: (event) => downloadNote(s, d, event.currentTarget),
    }, t("delivery.grn"))));
  return h("section", { id: "deliveries" },
    h("h2", {}, t("delivery.heading")),
    items.length ? h("ul", { class: "history" }, ...items) : h("p", {}, t("delivery.empty")),
    h("button", { type: "button", id: "delivery-record", class: "secondary", onclick: () => renderDeliveryForm(s) }, t("delivery.record")));
}

/** The steps a receiver records for a unit after it arrived, in the order
 *  they usually come (the hand-over is the coordinator's). */
const UNIT_STEPS = ["checklist", "installed", "commissioned", "acceptance_test", "training", "warranty", "location", "status"];
const UNIT_STATUSES = ["functioning", "needs_attention", "awaiting_repair", "not_functioning", "decommissioned"];
const TEST_RESULTS = ["passed", "failed", "not_applicable"];

/** A unit's step in a few words, or every value when people recorded it
 *  differently at the same time. */
function unitStepText(unit, kind) {
  const current = unit.steps[kind]?.current ?? [];
  const text = (e) => {
    switch (e.step) {
      case "installed": return t("unit.installed_on", { on: e.on, by: e.installer });
      case "commissioned": return t("unit.commissioned_on", { on: e.on });
      case "acceptance_test": return t("unit.tested", { result: t(`test.${e.result}`), on: e.on });
      case "training": return t("unit.trained", { people: e.people, on: e.on });
      case "warranty": return t("unit.warranty_until", { on: e.ends_on });
      case "location": return [e.department, e.room, e.custodian].filter(Boolean).join(" · ");
      case "status": return t(`unit_status.${e.status}`);
      case "checklist": return t("unit.checked", { count: e.checked.length, of: unit.accessories.length });
      case "handed_over": return t("unit.handed_over", { asset: e.asset_number });
      default: return e.step;
    }
  };
  if (current.length > 1) return t("unit.conflict", { values: current.map((e) => `${text(e)} (${e.recorded_by})`).join(" / ") });
  return current.length ? text(current[0]) : null;
}

/** The shipment's serialised units, each with where it stands and a button
 *  to record its next step. */
async function unitsSection(s) {
  if (!s.can_record_unit_steps) return null;
  const { units } = await phone.units(s.id);
  if (!units.length) return null;
  const items = units.map((u) => {
    const facts = ["status", "acceptance_test", "commissioned", "installed", "location", "warranty", "checklist", "training", "handed_over"]
      .map((kind) => unitStepText(u, kind)).filter(Boolean);
    const conflict = Object.values(u.steps).some((st) => st.current.length > 1);
    return h("li", { dataset: { serial: u.serial, line: u.line_id }, class: conflict ? "conflict" : null },
      h("div", {}, h("span", { class: "serial" }, u.serial), ` · ${u.item}`),
      h("small", {}, [u.received ? t(`condition.${u.received.condition}`) : t("unit.not_received"), ...facts].join(" · ")),
      h("div", {}, h("button", { type: "button", class: "secondary unit-step", onclick: () => renderUnitStepForm(s, u) }, t("unit.record"))));
  });
  return h("section", { id: "units" },
    h("h2", {}, t("unit.heading")),
    h("ul", { class: "units" }, ...items));
}

/** One step of one unit, recorded offline: the fields the step has. */
function renderUnitStepForm(s, unit) {
  const today = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  const step = h("select", { id: "unit-step" }, ...UNIT_STEPS.map((k) => h("option", { value: k }, t(`unit.step_${k}`))));
  const fields = h("div", { id: "unit-fields" });
  const note = h("textarea", { id: "unit-note" });
  const error = h("p", { class: "message", role: "alert", hidden: true });
  const input = (id, key, attrs = {}) => [h("label", { for: id }, t(key)), h("input", { id, ...attrs })];
  const date = (id, key) => input(id, key, { type: "date", value: today, required: true });
  const select = (id, key, values, prefix) => [h("label", { for: id }, t(key)),
    h("select", { id }, ...values.map((v) => h("option", { value: v }, t(`${prefix}.${v}`))))];
  const current = (kind) => unit.steps[kind]?.current?.[0];
  const layouts = {
    checklist: () => unit.accessories.length
      ? [h("fieldset", { class: "checklist" }, h("legend", {}, t("unit.accessories")),
        ...unit.accessories.map((item, i) => h("div", { class: "check" },
          h("input", { type: "checkbox", id: `unit-check-${i}`, value: item, checked: current("checklist")?.checked?.includes(item) }),
          h("label", { for: `unit-check-${i}` }, item))))]
      : [h("p", {}, t("unit.no_accessories"))],
    installed: () => [...date("unit-on", "unit.on"), ...input("unit-installer", "unit.installer", { required: true })],
    commissioned: () => date("unit-on", "unit.on"),
    acceptance_test: () => [...select("unit-result", "unit.result", TEST_RESULTS, "test"), ...date("unit-on", "unit.on")],
    training: () => [...date("unit-on", "unit.on"),
      ...input("unit-people", "unit.people", { type: "number", inputmode: "numeric", min: "1", required: true }),
      ...input("unit-trainer", "unit.trainer", { required: true })],
    warranty: () => [...date("unit-starts-on", "unit.starts_on"), ...input("unit-ends-on", "unit.ends_on", { type: "date", required: true }),
      ...input("unit-service-agent", "unit.service_agent")],
    location: () => [...input("unit-department", "unit.department", { required: true }), ...input("unit-room", "unit.room"),
      ...input("unit-custodian", "unit.custodian", { required: true })],
    status: () => select("unit-status", "unit.status", UNIT_STATUSES, "unit_status"),
  };
  const layout = () => fields.replaceChildren(...layouts[step.value]());
  step.addEventListener("change", layout);
  layout();
  const value = (id) => document.getElementById(id)?.value.trim() ?? "";
  const collect = () => {
    switch (step.value) {
      case "checklist": return { checked: [...fields.querySelectorAll("input:checked")].map((b) => b.value) };
      case "installed": return { on: value("unit-on"), installer: value("unit-installer") };
      case "commissioned": return { on: value("unit-on") };
      case "acceptance_test": return { result: value("unit-result"), on: value("unit-on") };
      case "training": return { on: value("unit-on"), people: Number(value("unit-people")), trainer: value("unit-trainer") };
      case "warranty": return { starts_on: value("unit-starts-on"), ends_on: value("unit-ends-on"), service_agent: value("unit-service-agent") };
      case "location": return { department: value("unit-department"), room: value("unit-room"), custodian: value("unit-custodian") };
      case "status": return { status: value("unit-status") };
      default: return {};
    }
  };
  show(h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await phone.recordUnitStep(s.id, { lineId: unit.line_id, serial: unit.serial, step: step.value, note: note.value.trim(), ...collect() });
        route = { view: "shipment", id: s.id };
        await render();
        notify(t("unit.saved"));
      } catch (e) {
        error.hidden = false;
        error.textContent = e?.name === "StoreFailed"
          ? t("error.storage", { reason: e.message })
          : t("receipt.refused", { reason: reason(e) });
      }
    },
  },
  h("h2", {}, t("unit.form_heading", { serial: unit.serial, item: unit.item })),
  h("label", { for: "unit-step" }, t("unit.step")), step,
  fields,
  h("label", { for: "unit-note" }, t("unit.note")), note,
  error,
  h("div", { class: "actions" },
    h("button", { type: "button", id: "unit-cancel", class: "secondary", onclick: () => render() }, t("receipt.cancel")),
    h("button", { type: "submit", id: "unit-save" }, t("receipt.save")))));
  step.focus();
}

/** Saves the server's goods-received note of a delivery, once it has
 *  synced: the receiving officer shows or sends it from the phone. */
async function downloadNote(s, d, button) {
  button.disabled = true;
  try {
    const { blob, filename } = await phone.goodsReceivedNote(s.id, d.id);
    saveFile(blob, filename);
    notify(t("delivery.grn_saved", { file: filename }));
  } catch (e) {
    message(e?.name === "NotSynced" ? t("delivery.grn_not_synced")
      : e instanceof AuthError ? t("sync.login_again")
        : e instanceof TypeError ? t("delivery.grn_offline")
          : t("delivery.grn_failed", { reason: e?.message ?? String(e) }));
  } finally {
    button.disabled = false;
  }
}

/** Hands a file to the browser to save (or share, on a phone). */
function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The delivery header: what the truck's papers and seal say, at the gate. */
function renderDeliveryForm(s) {
  const field = (id, attrs = {}) => h("input", { id, ...attrs });
  const waybill = field("delivery-waybill", { autocapitalize: "characters" });
  const transporter = field("delivery-transporter");
  const vehicle = field("delivery-vehicle", { autocapitalize: "characters" });
  const seal = h("select", { id: "delivery-seal" }, ...["intact", "broken", "none"].map((v) => h("option", { value: v }, t(`seal.${v}`))));
  const sealNumber = field("delivery-seal-number", { autocapitalize: "characters" });
  const expected = field("delivery-packages-expected", { type: "number", inputmode: "numeric" });
  const received = field("delivery-packages-received", { type: "number", inputmode: "numeric" });
  // The local time now, as datetime-local wants it.
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const arrived = field("delivery-arrived", { type: "datetime-local", value: now, required: true });
  const note = h("textarea", { id: "delivery-note" });
  const error = h("p", { class: "message", role: "alert", hidden: true });
  const count = (input) => (input.value === "" ? null : Number(input.value));
  const label = (input, key) => h("label", { for: input.id }, t(key));
  show(h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await phone.recordDelivery(s.id, {
          waybill: waybill.value.trim(),
          transporter: transporter.value.trim(),
          vehicle: vehicle.value.trim(),
          seal: seal.value,
          sealNumber: sealNumber.value.trim(),
          packagesExpected: count(expected),
          packagesReceived: count(received),
          arrivedAt: new Date(arrived.value).getTime(),
          note: note.value.trim(),
        });
        route = { view: "shipment", id: s.id };
        await render();
        notify(t("delivery.saved"));
      } catch (e) {
        error.hidden = false;
        error.textContent = e?.name === "StoreFailed"
          ? t("error.storage", { reason: e.message })
          : t("receipt.refused", { reason: reason(e) });
      }
    },
  },
  h("h2", {}, t("delivery.form_heading")),
  label(waybill, "delivery.waybill"), waybill,
  label(transporter, "delivery.transporter"), transporter,
  label(vehicle, "delivery.vehicle"), vehicle,
  label(seal, "delivery.seal"), seal,
  label(sealNumber, "delivery.seal_number"), sealNumber,
  label(expected, "delivery.packages_expected"), expected,
  label(received, "delivery.packages_received"), received,
  label(arrived, "delivery.arrived_at"), arrived,
  label(note, "delivery.note"), note,
  error,
  h("div", { class: "actions" },
    h("button", { type: "button", id: "delivery-cancel", class: "secondary", onclick: () => render() }, t("receipt.cancel")),
    h("button", { type: "submit", id: "delivery-save" }, t("receipt.save")))));
  waybill.focus();
}

/** The line's expected serial numbers not received yet, as a checklist:
 *  ticking one adds it to the serials (and counts it, until the person
 *  types a quantity), unticking removes it. Null for a line without them. */
function serialChecklist(s, line, serials, quantity) {
  const missing = s.summary.lines.find((l) => l.line_id === line.id)?.serials_missing ?? [];
  if (!missing.length) return null;
  let counted = true;
  quantity.addEventListener("input", () => { counted = false; });
  const listed = () => serials.value.split("\n").map((x) => x.trim()).filter(Boolean);
  const boxes = missing.map((serial, i) => {
    const box = h("input", { type: "checkbox", id: `expected-serial-${i}`, value: serial });
    box.addEventListener("change", () => {
      const others = listed().filter((x) => x !== serial);
      const next = box.checked ? [...others, serial] : others;
      serials.value = next.join("\n");
      if (counted) quantity.value = String(Math.max(1, next.length));
      serials.dispatchEvent(new Event("input", { bubbles: true }));
    });
    return h("div", { class: "check" }, box, h("label", { for: box.id, class: "serial" }, serial));
  });
  return h("fieldset", { id: "expected-serials", class: "checklist" },
    h("legend", {}, t("receipt.expected_serials")), ...boxes);
}

/** One warning before Save, in words. */
function warningText(w) {
  switch (w.kind) {
    case "more_than_outstanding":
      return w.outstanding === 0
        ? t("warning.nothing_outstanding", { quantity: w.quantity })
        : t("warning.more_than_outstanding", { quantity: w.quantity, outstanding: w.outstanding });
    case "serials_not_on_manifest":
      return t("warning.serials_not_on_manifest", { serials: w.serials.join(", ") });
    case "serials_already_received":
      return t("warning.serials_already_received", {
        serials: w.serials.join(", "),
        who: w.earlier.map((e) => t("warning.earlier", { user: e.recorded_by, when: formatTime(e.recorded_at) })).join(", "),
      });
    case "serial_count_differs":
      return t("warning.serial_count_differs", { quantity: w.quantity, serials: w.serials });
    default:
      return w.kind;
  }
}

/** The model's reason without the document path it starts with
 *  ("receipts/<id>/quantity: …"), which means nothing to a person. */
function reason(e) {
  return (e?.message ?? String(e)).replace(/^(receipts|deliveries|unit_events)\/[^/]+\/\w+: /, "");
}

/** zxing-wasm's version, as pinned in web/vendor/package.json: part of its
 *  path, which browsers may keep for a year. */
const ZXING_VERSION = "3.1.8";

/** Codes on device labels: 1D (serial plates, boxes) and 2D (QR, DataMatrix). */
const BARCODE_FORMATS = ["Code128", "Code39", "Code93", "Codabar", "EAN-13", "EAN-8", "ITF", "UPC-A", "UPC-E", "QRCode", "DataMatrix"];

/** Reads barcodes: the browser's BarcodeDetector where there is one, else
 *  zxing-wasm (`web/pkg/zxing`, built by scripts/build-web), loaded only now. */
async function barcodeReader() {
  if ("BarcodeDetector" in globalThis) {
    const detector = new BarcodeDetector();
    return async (source) => (await detector.detect(source)).map((code) => code.rawValue);
  }
  const zxing = await import(`./pkg/zxing-${ZXING_VERSION}/es/reader/index.js`);
  zxing.prepareZXingModule({
    overrides: {
      locateFile: (path, prefix) => path.endsWith(".wasm")
        ? new URL(`./pkg/zxing-${ZXING_VERSION}/reader/zxing_reader.wasm`, location.href).href
        : prefix + path,
    },
  });
  const options = { formats: BARCODE_FORMATS, maxNumberOfSymbols: 4, tryHarder: true };
  const canvas = document.createElement("canvas");
  return async (source) => {
    let input = source;
    if (source instanceof HTMLVideoElement) {
      if (!source.videoWidth) return [];
      canvas.width = source.videoWidth;
      canvas.height = source.videoHeight;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(source, 0, 0);
      input = context.getImageData(0, 0, canvas.width, canvas.height);
    }
    return (await zxing.readBarcodes(input, options)).filter((r) => r.isValid).map((r) => r.text);
  };
}

/** A barcode scanner that appends what it reads to `serials`: the camera,
 *  where the browser offers one, and a photo of the label everywhere. */
function scanner(serials) {
  let stream = null;
  let timer = null;
  const video = h("video", { playsinline: true, muted: true, hidden: true });
  const button = h("button", { type: "button", id: "receipt-scan", class: "secondary" }, t("receipt.scan"));
  const photo = h("input", { type: "file", id: "receipt-photo-scan", accept: "image/*", capture: "environment", class: "visually-hidden" });
  const photoButton = h("label", { for: "receipt-photo-scan", class: "button secondary" }, t("receipt.scan_photo"));
  const problem = h("p", { class: "message", role: "alert", hidden: true });
  const add = (codes) => {
    const have = serials.value.split("\n").map((x) => x.trim()).filter(Boolean);
    const fresh = codes.filter((code) => code && !have.includes(code));
    if (fresh.length) {
      serials.value = [...have, ...fresh].join("\n");
      serials.dispatchEvent(new Event("input", { bubbles: true }));
    }
    return fresh.length;
  };
  const failed = (e) => {
    problem.textContent = t("receipt.scan_failed", { reason: e?.message ?? String(e) });
    problem.hidden = false;
  };
  const stop = () => {
    clearInterval(timer);
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = true;
    button.textContent = t("receipt.scan");
  };
  button.addEventListener("click", async () => {
    if (stream) return stop();
    problem.hidden = true;
    let read;
    try {
      read = await barcodeReader();
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
    } catch (e) {
      // No camera, or permission refused: a photo or typing still works.
      stop();
      return failed(e);
    }
    button.textContent = t("receipt.scan_stop");
    let busy = false;
    timer = setInterval(async () => {
      if (busy) return;
      busy = true;
      add(await read(video).catch(() => []));
      busy = false;
    }, 500);
  });
  photo.addEventListener("change", async () => {
    const file = photo.files?.[0];
    photo.value = "";
    if (!file) return;
    problem.hidden = true;
    try {
      const read = await barcodeReader();
      const source = "BarcodeDetector" in globalThis ? await createImageBitmap(file) : file;
      if (!add(await read(source))) failed(new Error(t("receipt.scan_none")));
    } catch (e) {
      failed(e);
    }
  });
  const camera = navigator.mediaDevices?.getUserMedia ? button : null;
  return { element: h("div", { class: "scan" }, camera, photo, photoButton, problem, video), stop };
}

async function render() {
  translate();
  document.getElementById("lang").textContent = t("lang.switch");
  if (!phone.account()) {
    await renderStatus();
    return renderLogin(phone.lastError instanceof AuthError ? t("sync.login_again") : null);
  }
  await renderStatus();
  if (route.view === "shipment") return renderShipment(route.id);
  return renderList();
}

async function start() {
  await setLanguage(preferredLanguage());
  document.getElementById("lang").addEventListener("click", async () => {
    const next = LANGUAGES.find((l) => l !== language());
    await setLanguage(next, { remember: true });
    render();
  });
  phone = await Phone.open();
  document.getElementById("sync").addEventListener("click", () => phone.sync().catch(() => {}));
  document.getElementById("carry").addEventListener("click", async () => {
    try {
      const { blob, filename } = await phone.carriedFile();
      saveFile(blob, filename);
      notify(t("carry.saved", { file: filename }));
    } catch (e) {
      message(t("carry.failed", { reason: e?.message ?? String(e) }));
    }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    // Logging out needs the network to log in again: with records still
    // waiting, offline, that would lock the receiver out at the loading
    // dock. Online, ask first.
    const waiting = await phone.pending();
    if (waiting > 0 && !navigator.onLine) {
      notify(t("logout.offline_refused", { count: waiting }));
      return;
    }
    if (waiting > 0 && !confirm(t("logout.confirm", { count: waiting }))) return;
    await phone.logout();
    render();
  });
  // Refresh whatever is on screen when records, sync state or login change.
  phone.subscribe(() => {
    // Not under someone's fingers: a form being filled, a search being typed.
    if (!main.querySelector("form") && document.activeElement?.id !== "shipment-search") render();
    else renderStatus();
  });
  addEventListener("offline", renderStatus);
  addEventListener("online", renderStatus);
  await render();
  phone.startAutoSync();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("sw.js").catch(() => {});
  // Over plain http:// on a network address the browser withholds the
  // service worker (no app without the network) and more: say so plainly.
  if (!globalThis.isSecureContext) {
    document.body.prepend(h("p", { id: "insecure", class: "message", role: "alert" }, t("insecure.explain")));
  }
}

start().catch((e) => {
  main.textContent = `aidsync could not start: ${e?.message ?? e}`;
});
