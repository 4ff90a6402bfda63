/**
 * The Activity panel: the newest events first, with their dates, and a filter
 * in the terminal dashboard's syntax: `ada path:python type:assessment`
 * (bare words match the learner, type, path, module or item; `field:text`
 * matches that field; every term must match).
 */
import { dateTime, esc, num } from "./format.js";
import { sizeSpacers, spacerHtml, visibleRange } from "./windowed.js";

/** How many events the feed lists (the model keeps more, for the alert detail); only the
 * rows in view are drawn. */
const SHOWN = 500;

const FIELDS = ["learner", "type", "path", "module", "item", "session", "id"];

/** A predicate from filter text; null when the text is empty. */
export function parseFilter(text) {
  const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) return null;
  const tests = terms.map((term) => {
    const colon = term.indexOf(":");
    if (colon > 0 && FIELDS.includes(term.slice(0, colon))) {
      const field = term.slice(0, colon);
      const want = term.slice(colon + 1);
      return (event) => String(event[field] ?? "").toLowerCase().includes(want);
    }
    return (event) => FIELDS.slice(0, 5).some((field) => String(event[field] ?? "").toLowerCase().includes(term));
  });
  return (event) => tests.every((test) => test(event));
}

function score(event) {
  const s = event.score;
  if (!s) return "";
  if (typeof s.scaled === "number") return `${num(s.scaled * 100)}%`;
  if (typeof s.raw === "number" && typeof s.max === "number" && s.max > (s.min ?? 0)) {
    return `${num(((s.raw - (s.min ?? 0)) / (s.max - (s.min ?? 0))) * 100)}%`;
  }
  return "";
}

function where(event) {
  return [event.path, event.module, event.item].filter(Boolean).join(" / ");
}

/** One feed row as HTML, two lines (also used by the alert detail and the learner page). */
export function eventHtml(event, { showLearner = true } = {}) {
  const kind = String(event.type).split(".")[0];
  const value = score(event) || (typeof event.progress === "number" ? `${num(event.progress)}%` : "");
  return (
    `<li data-seq="${esc(event.seq)}" class="ev ev-${esc(kind)}">` +
    `<div class="l1"><time>${esc(dateTime(event.ts))}</time>` +
    (showLearner ? ` <b class="who">${esc(event.learner)}</b>` : "") +
    `</div><div class="l2"><span class="type">${esc(event.type)}</span> ` +
    `<span class="where">${esc(where(event))}</span>` +
    (value ? ` <span class="score">${esc(value)}</span>` : "") +
    `</div></li>`
  );
}

/** The height of one feed row in pixels: two lines (jacmon.css `#feed li`). */
export const FEED_ROW_PX = 40;

export class ActivityPanel {
  /**
   * @param {HTMLOListElement} list the feed, its own scroller
   * @param {import("./model.js").ActivityModel} model
   * @param {{redraw?: () => void}} options redraw: ask for a draw (on scroll)
   */
  constructor(list, status, model, { redraw = () => this.draw() } = {}) {
    this.list = list;
    this.status = status;
    this.model = model;
    this.match = null;
    this.filterText = "";
    list.addEventListener("scroll", redraw, { passive: true });
  }

  setFilter(text) {
    this.filterText = text;
    this.match = parseFilter(text);
    this.draw();
  }

  /** The events the feed lists, newest first (at most SHOWN). */
  shown() {
    const events = this.model.events;
    const shown = [];
    for (let i = events.length - 1; i >= 0 && shown.length < SHOWN; i -= 1) {
      if (!this.match || this.match(events[i])) shown.push(events[i]);
    }
    return shown;
  }

  draw() {
    const shown = this.shown();
    const range = visibleRange(this.list, FEED_ROW_PX, shown.length);
    this.list.innerHTML = shown.length
      ? spacerHtml("li", range.first) +
        shown
          .slice(range.first, range.last)
          .map((event) => eventHtml(event))
          .join("") +
        spacerHtml("li", shown.length - range.last)
      : `<li class="empty">${this.match ? "no event matches the filter" : "no events yet"}</li>`;
    sizeSpacers(this.list, FEED_ROW_PX);
    const gap = this.model.gap ? " · reconnected too late to replay: older events are not shown" : "";
    const filter = this.match ? ` matching “${this.filterText}”` : "";
    this.status.textContent = `${shown.length} newest${filter} of ${this.model.added} received${gap}`;
  }
}
