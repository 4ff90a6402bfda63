/**
 * Text for the screen: escaping, numbers, dates, ages and durations.
 * Times are epoch seconds (or ISO 8601 text, as events carry them).
 */

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** HTML-escape any value for text or a quoted attribute (null and undefined give ""). */
export function esc(value) {
  if (value === null || value === undefined) return "";
  return String(value).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

/** A compact number: 12, 3.4, 12.3k, 1.2M; null as "-". */
export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "-";
  if (typeof value !== "number") return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

/** A percentage: "74.5%"; null as "-". */
export function pct(value) {
  return value === null || value === undefined ? "-" : `${Number(value).toFixed(value >= 99.95 ? 0 : 1)}%`;
}

/** Epoch seconds from a number or ISO 8601 text; null when unreadable. */
export function epoch(ts) {
  if (typeof ts === "number" && Number.isFinite(ts)) return ts;
  if (typeof ts === "string") {
    const ms = Date.parse(ts);
    return Number.isNaN(ms) ? null : ms / 1000;
  }
  return null;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** "2026-01-05 10:00:03" in the browser's time zone; "-" when unreadable. */
export function dateTime(ts) {
  const seconds = epoch(ts);
  if (seconds === null) return "-";
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "2026-01-05 10:00" in the browser's time zone. */
export function dateMinute(ts) {
  const text = dateTime(ts);
  return text === "-" ? text : text.slice(0, 16);
}

/** A span of seconds as "45s", "12m", "3h", "5d"; null as "-". */
export function span(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Time spent as "2h 05m" or "12m". */
export function spent(seconds) {
  if (!Number.isFinite(seconds)) return "-";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  return `${Math.floor(minutes / 60)}h ${pad(minutes % 60)}m`;
}

/** How long ago `ts` was, on the server's clock `now` (both epoch seconds). */
export function ago(ts, now) {
  const seconds = epoch(ts);
  return seconds === null ? "-" : span(now - seconds);
}
