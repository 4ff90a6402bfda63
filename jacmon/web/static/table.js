/**
 * Tables drawn from rows: one function for every panel's table, with a
 * selected row (keyboard and click), sortable columns and escaped cells.
 */
import { esc } from "./format.js";
import { spacerHtml } from "./windowed.js";

/**
 * A column: {title, cell(row) -> text, html?(row) -> trusted html, cls?, sort?(row) -> key, hint?}.
 * @param {object[]} columns
 * @param {object[]} rows
 * @param {{key: (row) => string, selected?: string|null, sortIndex?: number|null, descending?: boolean, empty?: string}} options
 * @returns {string} the table's HTML
 */
export function tableHtml(columns, rows, { key, selected = null, sortIndex = null, descending = false, empty = "nothing yet", range = null }) {
  const head = columns
    .map((column, index) => {
      const mark = index === sortIndex ? (descending ? " ▼" : " ▲") : "";
      const hint = column.hint ? ` title="${esc(column.hint)}"` : "";
      return `<th class="${esc(column.cls ?? "")}"${hint}>${esc(column.title)}${mark}</th>`;
    })
    .join("");
  // With a range (windowed.js) only those rows are drawn; spacer rows keep the others' room.
  const drawn = range ? rows.slice(range.first, range.last) : rows;
  const spacer = (count) => (range ? spacerHtml("tr", count, columns.length) : "");
  const body = rows.length
    ? spacer(range ? range.first : 0) +
      drawn
        .map((row) => {
          const id = key(row);
          const chosen = id === selected ? ' class="selected" aria-selected="true"' : "";
          const cells = columns
            .map((column) => `<td class="${esc(column.cls ?? "")}">${column.html ? column.html(row) : esc(column.cell(row))}</td>`)
            .join("");
          return `<tr data-key="${esc(id)}"${chosen}>${cells}</tr>`;
        })
        .join("") +
      spacer(range ? rows.length - range.last : 0)
    : `<tr class="empty"><td colspan="${columns.length}">${esc(empty)}</td></tr>`;
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** Rows sorted by a column's sort key (its cell text when it has none). */
export function sortRows(rows, column, descending) {
  if (!column) return rows;
  const keyOf = column.sort ?? column.cell;
  const sorted = [...rows].sort((a, b) => compare(keyOf(a), keyOf(b)));
  return descending ? sorted.reverse() : sorted;
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

/** A progress bar: a track and a fill whose width is set through the CSSOM (CSP-safe). */
export function barHtml(percent) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  return `<span class="bar" data-pct="${value.toFixed(1)}"><span></span></span>`;
}

/** Give every bar drawn under `root` its width (style attributes in markup are blocked by CSP). */
export function sizeBars(root) {
  for (const bar of root.querySelectorAll(".bar[data-pct]")) {
    bar.firstElementChild.style.width = `${bar.dataset.pct}%`;
  }
}

/** The key of the row `step` rows away from `selected` (clamped), from a drawn table. */
export function stepSelection(root, selected, step) {
  const keys = [...root.querySelectorAll("tbody tr[data-key]")].map((row) => row.dataset.key);
  if (!keys.length) return null;
  const at = keys.indexOf(selected);
  const next = at === -1 ? (step > 0 ? 0 : keys.length - 1) : Math.max(0, Math.min(keys.length - 1, at + step));
  return keys[next];
}

/**
 * What the table panels share: a click on a row selects and opens it, ↑ ↓ move the
 * selection, `i` inverts the sort. Subclasses draw (`draw()`), open (`open()`) and may sort.
 */
export class TablePanel {
  /** @param {HTMLElement} root the element the panel's table is drawn into */
  constructor(root) {
    this.root = root;
    this.selected = null;
    this.descending = false;
    root.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-key]");
      if (!row) return;
      this.selected = row.dataset.key;
      this.open();
    });
  }

  move(step) {
    this.selected = stepSelection(this.root, this.selected, step);
    this.draw();
    this.root.querySelector("tr.selected")?.scrollIntoView({ block: "nearest" });
  }

  invertSort() {
    this.descending = !this.descending;
    this.draw();
  }
}
