// Translations for the page scripts. The page embeds its configuration (with `strings`: English
// msgid → text in the reader's language) in <script type="application/json">; every string the
// scripts show goes through t() with its English text, so no prose lives in the JavaScript.

let strings = {};
let locale = document.documentElement.lang || "vi";

/** Read the JSON configuration block `id` and remember its strings. */
export function readConfig(id) {
  const element = document.getElementById(id);
  const config = element ? JSON.parse(element.textContent || "{}") : {};
  strings = config.strings || {};
  return config;
}

/** The translation of `msgid`, with `{name}` placeholders filled from `params`. */
export function t(msgid, params) {
  let text = Object.prototype.hasOwnProperty.call(strings, msgid) && strings[msgid] ? strings[msgid] : msgid;
  if (params) {
    text = text.replace(/\{(\w+)\}/g, (whole, key) => (key in params ? String(params[key]) : whole));
  }
  return text;
}

/** A number in the reader's language (a decimal comma in Vietnamese). */
export function formatNumber(value, digits = 0) {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
}

const CITY_TIME_ZONE = "Asia/Ho_Chi_Minh"; // the site writes every time in the city's time

/** "08:05" from an ISO 8601 time, in the city's time. */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  try {
    return date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: CITY_TIME_ZONE });
  } catch (error) {
    return date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  }
}
