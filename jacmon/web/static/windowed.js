/**
 * Draw only the rows in view. At 3,000 events/s every feed row and every learner row is new
 * at each draw, so rebuilding hundreds of them 15 times a second is layout and paint the
 * tab cannot afford (bench_web.py: ~60 % of a core for 200 + 500 rows, ~20 % for 30 each).
 * Rows have a fixed height (jacmon.css), so the rows in view follow from the scroll offset,
 * and spacers sized through the CSSOM (CSP-safe) keep the scrollbar the full list's.
 */

/** Rows drawn beyond the visible ones, above and below, so a quick scroll shows no gap. */
const OVERSCAN = 6;

/** Height assumed for a scroller that is not laid out yet (a hidden panel), in pixels. */
const FALLBACK_HEIGHT_PX = 600;

/**
 * The slice of `total` rows of `rowHeightPx` each that `scroller` shows now.
 * @returns {{first: number, last: number}} row indexes, `last` exclusive
 */
export function visibleRange(scroller, rowHeightPx, total) {
  const height = scroller.clientHeight || FALLBACK_HEIGHT_PX;
  const first = Math.max(0, Math.floor(scroller.scrollTop / rowHeightPx) - OVERSCAN);
  const last = Math.min(total, first + Math.ceil(height / rowHeightPx) + 2 * OVERSCAN);
  return { first: Math.min(first, Math.max(0, last - 1)), last };
}

/**
 * Spacer rows keep the room of the rows outside the range, so the scrollbar is the full
 * list's (padding would not do: a scroller's max-height includes its padding).
 * @param {string} tag "li" or "tr" @param {number} count rows stood for @param {number} columns a tr's cells
 */
export function spacerHtml(tag, count, columns = 1) {
  if (count <= 0) return "";
  const cell = tag === "tr" ? `<td colspan="${columns}"></td>` : "";
  return `<${tag} class="spacer" aria-hidden="true" data-rows="${count}">${cell}</${tag}>`;
}

/** Give the spacers drawn under `root` their height (rows × `rowHeightPx`), through the CSSOM. */
export function sizeSpacers(root, rowHeightPx) {
  for (const spacer of root.querySelectorAll(".spacer[data-rows]")) {
    spacer.style.height = `${Number(spacer.dataset.rows) * rowHeightPx}px`;
  }
}
