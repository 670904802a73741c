// Translations: every string the UI shows comes from i18n/<lang>.json.
// The language is the browser's (Ukrainian if it prefers it), or the one the
// person chose with the switch, remembered on the phone.

export const LANGUAGES = ["en", "uk"];
const CHOSEN = "aidsync.lang";

let strings = {};
let current = "en";

export function preferredLanguage() {
  const chosen = localStorage.getItem(CHOSEN);
  if (LANGUAGES.includes(chosen)) return chosen;
  const browser = (navigator.languages ?? [navigator.language]).map((l) => l.slice(0, 2));
  return browser.find((l) => LANGUAGES.includes(l)) ?? "en";
}

/** Loads `lang`'s strings from `<base><lang>.json`; `base` is the phone
 *  app's `i18n/` (relative to the page) unless a page with translations of
 *  its own (the coordinator dashboard) names its folder. */
export async function setLanguage(lang, { remember = false, base = "i18n/" } = {}) {
  const response = await fetch(`${base}${lang}.json`);
  strings = await response.json();
  current = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(CHOSEN, lang);
}

export function language() {
  return current;
}

/** The string for `key` with `{name}` placeholders filled in. A missing key
 *  shows as itself, in brackets, so a test can find it on screen. */
export function t(key, params = {}) {
  const template = strings[key];
  if (template === undefined) return `[${key}]`;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** Fills every `data-i18n` element under `root` with its string. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

export function formatTime(ms) {
  return new Date(ms).toLocaleString(current === "uk" ? "uk-UA" : "en-GB", {
    dateStyle: "short",
    timeStyle: "short",
  });
}

/** A calendar date (`YYYY-MM-DD`, as manifests carry it) in the same style
 *  as `formatTime`'s dates, so one screen never mixes two formats. */
export function formatDay(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  if (!y || !m || !d) return isoDate;
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(current === "uk" ? "uk-UA" : "en-GB", {
    dateStyle: "short",
    timeZone: "UTC",
  });
}
